"""MCP resources, resource templates, prompts and completions through the real stdio server and
the official client, after a pipeline run (over the same connection) has filled the storage."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from mcp_server.client import connect
from tests.e2e.client_helpers import call_ok

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
TEMPLATES = {
    "mlops://registry/{model_name}",
    "mlops://registry/{model_name}/versions/{version}",
    "mlops://models/{path}",
    "mlops://datasets/{path}",
    "mlops://reports/{path}",
    "mlops://pipelines/{run_id}",
}


async def _all_resources(session: ClientSession) -> tuple[list[types.Resource], int]:
    resources: list[types.Resource] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await session.list_resources(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        pages += 1
        resources += page.resources
        cursor = page.next_cursor
        if not cursor:
            return resources, pages


async def _json(session: ClientSession, uri: str) -> Any:
    result = await session.read_resource(uri)
    [content] = result.contents
    assert isinstance(content, types.TextResourceContents) and content.mime_type == "application/json"
    return json.loads(content.text)


async def _complete(session: ClientSession, ref: Any, name: str, value: str, **context: str) -> list[str]:
    result = await session.complete(ref, {"name": name, "value": value}, context or None)
    return list(result.completion.values)


async def test_resources_prompts_and_completions_over_stdio(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    root = tmp_path / "storage"
    (root / "datasets").mkdir(parents=True)
    load_breast_cancer(as_frame=True).frame.to_csv(root / "datasets" / "cancer.csv", index=False)
    for i in range(120):  # more than one page of resources
        (root / "datasets" / f"part-{i:03d}.csv").write_text("a,b\n1,2\n")
    (root / ".mlops-tmp").mkdir()
    (root / ".mlops-tmp" / "scratch.csv").write_text("a\n1\n")
    env = {"MLOPS_STORAGE_ROOT": str(root), "MLOPS_MAX_CONCURRENT_JOBS": "1"}
    async with connect(env) as session:
        config = {
            "dataset_s3_uri": "datasets/cancer.csv",
            "target_column": "target",
            "task_type": "classification",
            "algorithm": "random_forest",
            "hyperparameters": {"n_estimators": 10, "n_jobs": 1},
            "model_name": "cancer-rf",
        }
        run = await call_ok(session, "run_pipeline", config=config, max_wait_seconds=180)
        assert run["status"] == "succeeded" and run["registered"]["version"] == 1, run
        model = run["best_model_s3_uri"]
        plot = await call_ok(session, "visualization", model_s3_uri=model, plot_type="feature_importance")
        markdown = await call_ok(session, "generate_report", model_s3_uri=model, output_s3_uri="reports/cancer.md")

        # resources/list: paginated, every kind present, scratch never listed
        resources, pages = await _all_resources(session)
        assert pages >= 2
        uris = {r.uri for r in resources}
        assert len(uris) == len(resources)
        run_id = run["run_id"]
        assert f"mlops://pipelines/{run_id}" in uris
        assert "mlops://registry/cancer-rf" in uris and "mlops://registry/cancer-rf/versions/1" in uris
        assert "mlops://datasets/datasets/cancer.csv" in uris
        assert "mlops://reports/reports/cancer.md" in uris
        mime = {r.uri: r.mime_type for r in resources}
        assert mime["mlops://reports/reports/cancer.md"] == "text/markdown"
        assert mime[f"mlops://pipelines/{run['run_id']}"] == "application/json"
        assert any(u.startswith("mlops://models/pipeline-artifacts/") for u in uris)
        assert any(r.mime_type == "image/png" for r in resources)
        assert not any("mlops-tmp" in u or "/jobs/" in u or "pipelines/keys" in u for u in uris)

        templates = await session.list_resource_templates()
        assert {t.uri_template for t in templates.resource_templates} == TEMPLATES

        # resources/read: JSON metadata, reports with their type, PNG as a blob, s3/file URIs
        record = await _json(session, f"mlops://pipelines/{run_id}")
        assert record["status"] == "succeeded" and record["registered"]["model_name"] == "cancer-rf"
        versions = await _json(session, "mlops://registry/cancer-rf")
        assert versions["production_version"] == 1
        version = await _json(session, "mlops://registry/cancer-rf/versions/production")
        assert version["version"] == 1 and version["status"] == "production"
        dataset = await _json(session, "mlops://datasets/datasets/cancer.csv")
        assert dataset["rows"] == 569 and "target" in dataset["column_names"]
        prefix = f"file://{root.resolve()}/"
        model_path = model.removeprefix(prefix)
        bundle = await _json(session, f"mlops://models/{model_path}")
        assert bundle["algorithm"] == "random_forest" and bundle["sha256_verified"] is True

        report = (await session.read_resource("mlops://reports/reports/cancer.md")).contents[0]
        assert isinstance(report, types.TextResourceContents) and report.mime_type == "text/markdown"
        html_key = run["report_s3_uri"].removeprefix(prefix)
        html = (await session.read_resource(f"mlops://reports/{html_key}")).contents[0]
        assert isinstance(html, types.TextResourceContents) and html.mime_type == "text/html"
        assert "<html" in html.text.lower()
        image = (await session.read_resource(plot["image_s3_uri"])).contents[0]
        assert isinstance(image, types.BlobResourceContents) and image.mime_type == "image/png"
        assert base64.b64decode(image.blob).startswith(b"\x89PNG")
        assert markdown["report_s3_uri"].endswith("cancer.md")

        refused = [
            f"file://{tmp_path}/elsewhere.csv",
            f"file://{root.resolve()}/.mlops-tmp/scratch.csv",
            f"file://{root.resolve()}/jobs/{run_id}.json",
            "mlops://datasets/.mlops-tmp/scratch.csv",
            "mlops://registry/no-such-model",
            "mlops://nothing/here",
            "http://example.com/x",
        ]
        for bad in refused:
            with pytest.raises(MCPError):
                await session.read_resource(bad)

        # prompts
        prompts = {p.name: p for p in (await session.list_prompts()).prompts}
        assert {"train_from_issue", "train_and_register", "compare_and_promote", "investigate_failed_run"} <= set(
            prompts
        )
        assert [a.name for a in prompts["train_and_register"].arguments or []] == [
            "dataset_s3_uri",
            "target_column",
            "task_type",
        ]
        got = await session.get_prompt("investigate_failed_run", {"run_id": run_id})
        text = got.messages[0].content
        assert isinstance(text, types.TextContent) and f"mlops://pipelines/{run_id}" in text.text
        got = await session.get_prompt("train_from_issue", {"repository": "octo/ml", "issue_number": "7"})
        assert isinstance(got.messages[0].content, types.TextContent)
        assert "parse_issue_config" in got.messages[0].content.text
        with pytest.raises(MCPError, match="model_name"):
            await session.get_prompt("compare_and_promote", {})

        # completions: model names, versions, dataset keys, run ids, environment ids, columns
        prompt = types.PromptReference(type="ref/prompt", name="compare_and_promote")
        assert await _complete(session, prompt, "model_name", "can") == ["cancer-rf"]
        version_ref = types.ResourceTemplateReference(
            type="ref/resource", uri="mlops://registry/{model_name}/versions/{version}"
        )
        assert "1" in await _complete(session, version_ref, "version", "", model_name="cancer-rf")
        train = types.PromptReference(type="ref/prompt", name="train_and_register")
        assert await _complete(session, train, "dataset_s3_uri", "datasets/can") == ["datasets/cancer.csv"]
        assert await _complete(session, train, "task_type", "reg") == ["regression"]
        columns = await _complete(session, train, "target_column", "tar", dataset_s3_uri="datasets/cancer.csv")
        assert columns == ["target"]
        investigate = types.PromptReference(type="ref/prompt", name="investigate_failed_run")
        assert await _complete(session, investigate, "run_id", "job-") == [run_id]
        rl = types.PromptReference(type="ref/prompt", name="train_reinforcement")
        assert "CartPole-v1" in await _complete(session, rl, "environment", "Cart")
