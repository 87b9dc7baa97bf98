"""add_labels, remove_label, list_labels."""

from __future__ import annotations

from itertools import islice
from urllib.parse import quote

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.github_integration.client import (
    ISSUES_READ,
    ISSUES_WRITE,
    github_errors,
    label_names,
    repository,
)
from mcp_server.capabilities.github_integration.schemas import (
    AddLabelsInput,
    IssueLabelsOutput,
    LabelInfo,
    ListLabelsInput,
    ListLabelsOutput,
    RemoveLabelInput,
)

MAX_LABELS = 500


# PyGithub's add_to_labels / remove_from_labels drop GitHub's answer (the labels now on the issue),
# so these two call the same endpoints through the issue's requester and keep it.
def add_labels(ctx: ToolContext, params: AddLabelsInput) -> ToolOutput:
    repo, number = params.repository, params.issue_number
    with github_errors(
        f"add labels to issue #{number} of {repo}",
        scope=ISSUES_WRITE,
        not_found=f"issue #{number} of {repo} was not found",
    ):
        issue = repository(ctx, repo).get_issue(number)
        _, data = issue.requester.requestJsonAndCheck("POST", f"{issue.url}/labels", input={"labels": params.labels})
    labels = label_names(data)
    return ToolOutput(data=IssueLabelsOutput(labels=labels), summary=f"{repo}#{number} labels: {', '.join(labels)}")


def remove_label(ctx: ToolContext, params: RemoveLabelInput) -> ToolOutput:
    repo, number, label = params.repository, params.issue_number, params.label
    with github_errors(
        f"remove label {label!r} from issue #{number} of {repo}",
        scope=ISSUES_WRITE,
        not_found=f"label {label!r} is not on issue #{number} of {repo}, or the issue does not exist",
    ):
        issue = repository(ctx, repo).get_issue(number)
        _, data = issue.requester.requestJsonAndCheck("DELETE", f"{issue.url}/labels/{quote(label, safe='')}")
    labels = label_names(data)
    return ToolOutput(
        data=IssueLabelsOutput(labels=labels), summary=f"{repo}#{number} labels: {', '.join(labels) or 'none'}"
    )


def list_labels(ctx: ToolContext, params: ListLabelsInput) -> ToolOutput:
    repo, number = params.repository, params.issue_number
    where = f"issue #{number} of {repo}" if number else f"repository {repo}"
    with github_errors(f"list the labels of {where}", scope=ISSUES_READ, not_found=f"{where} was not found"):
        handle = repository(ctx, repo)
        listing = handle.get_issue(number).get_labels() if number else handle.get_labels()
        found = list(islice(listing, MAX_LABELS + 1))
        labels = [LabelInfo(name=label.name, color=label.color, description=label.description) for label in found]
    truncated = len(labels) > MAX_LABELS
    data = ListLabelsOutput(labels=labels[:MAX_LABELS], truncated=truncated)
    return ToolOutput(
        data=data, summary=f"{len(data.labels)} label(s) of {where}" + (" (truncated)" if truncated else "")
    )
