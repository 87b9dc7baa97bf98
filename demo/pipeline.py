"""Demo section: the issue-driven pipeline. A GitHub issue (on a loopback GitHub the demo starts)
carries a training config; a signed webhook delivery with `run: true` starts the pipeline, which
trains, judges, registers and promotes the model, notifies Slack (a loopback receiver) and
comments on the issue. Then the run is read back as an MCP resource."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from contextlib import ExitStack
from typing import Any

import anyio
import mcp_types as types

from tests.github_integration.loopback_github import LoopbackGitHub
from tests.notification.servers import SLACK_WEBHOOK_PATH, HookServer

REPO = "demo-org/ml-models"
WEBHOOK_SECRET = "demo-webhook-secret"
ISSUE_BODY = """Please train the breast-cancer classifier.

```yaml
dataset_s3_uri: raw/breast_cancer.csv
target_column: target
task_type: classification
algorithms: [random_forest]
hyperparameters: {random_forest: {n_estimators: 30}}
thresholds: {accuracy: 0.9}
model_name: breast-cancer-pipeline
notify: [slack]
```
"""


class LoopbackServices:
    """GitHub and Slack on 127.0.0.1, started before the MCP server so its settings can name them."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.github = self._stack.enter_context(LoopbackGitHub())
        self.hooks = self._stack.enter_context(HookServer())
        self.github.add_repo(REPO)
        self.issue = self.github.add_issue(REPO, "Train the breast-cancer model", ISSUE_BODY, ["mlops:train"])

    def env(self) -> dict[str, str]:
        return {
            **self.github.env(),
            "MLOPS_OUTBOUND_ALLOW": f"{self.github.origin},{self.hooks.origin}",
            "SLACK_WEBHOOK_URL": self.hooks.slack_webhook,
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",  # no AWS here: secrets come from the environment at once
        }

    def close(self) -> None:
        self._stack.close()


async def run(demo: Any, services: LoopbackServices) -> dict[str, Any]:
    print("\n== Pipeline ==")
    issue = services.github.repos[REPO].issues[services.issue]
    payload = json.dumps(
        {
            "action": "labeled",
            "issue": {"number": services.issue, "body": issue["body"], "labels": issue["labels"]},
            "repository": {"full_name": REPO},
            "sender": {"login": "octocat"},
        }
    )
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    handled = await demo.call(
        "handle_webhook_event",
        ("accepted", "reason", "run_id"),
        event="issues",
        delivery_id="demo-delivery-1",
        payload=payload,
        signature=signature,
        run=True,
    )
    run_id = handled["run_id"]
    deadline = time.monotonic() + 180
    while True:
        record = await demo.session.call_tool("get_pipeline_run", {"run_id": run_id})
        state = record.structured_content or {}
        if state.get("status") in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        await anyio.sleep(0.5)
    final = await demo.call("get_pipeline_run", ("status", "passed", "registered", "report_s3_uri"), run_id=run_id)
    for stage in final["stages"]:
        print(f"     {stage['name']:<10} {stage['status']:<9} {stage['seconds'] or 0:6.2f}s")
    comments = services.github.repos[REPO].comments[services.issue]
    labels = [label["name"] for label in services.github.repos[REPO].issues[services.issue]["labels"]]
    print(f"     issue #{services.issue}: {len(comments)} comment(s), labels {labels}")
    print(f"     slack messages received: {len(services.hooks.received(SLACK_WEBHOOK_PATH))}")
    resource = await demo.session.read_resource(f"mlops://pipelines/{run_id}")
    content = resource.contents[0]
    size = len(content.text) if isinstance(content, types.TextResourceContents) else 0
    print(f"     resource mlops://pipelines/{run_id}: {size} bytes of JSON")
    if final["status"] != "succeeded" or not final["passed"]:
        print(f"     pipeline FAILED: {final.get('error')}")
        raise SystemExit(1)
    return {"run_id": run_id, "registered": final["registered"], "comments": len(comments), "labels": labels}
