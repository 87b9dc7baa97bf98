"""Labels against the loopback GitHub server."""

from __future__ import annotations

from mcp_server.router import ToolRouter
from tests.github_integration.conftest import REPO
from tests.github_integration.loopback_github import LoopbackGitHub
from tests.helpers import call, call_error


async def test_add_labels_returns_every_label_now_on_the_issue(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    number = github.add_issue(REPO, labels=["bug"])
    result = await call(gh_router, "add_labels", repository=REPO, issue_number=number, labels=["mlops:train", "bug"])
    assert result["labels"] == ["bug", "mlops:train"]
    assert [label["name"] for label in github.repos[REPO].issues[number]["labels"]] == ["bug", "mlops:train"]


async def test_remove_label_with_reserved_url_characters(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    number = github.add_issue(REPO, labels=["area/ml ops?", "keep"])
    result = await call(gh_router, "remove_label", repository=REPO, issue_number=number, label="area/ml ops?")
    assert result["labels"] == ["keep"]


async def test_removing_a_label_not_on_the_issue_names_it(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    number = github.add_issue(REPO, labels=["bug"])
    message = await call_error(gh_router, "remove_label", repository=REPO, issue_number=number, label="mlops:train")
    assert "'mlops:train' is not on issue" in message


async def test_list_labels_of_repository_and_of_issue(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.add_issue(REPO, labels=["bug", "enhancement"])
    number = github.add_issue(REPO, labels=["mlops:train"])
    github.repos[REPO].labels["bug"]["description"] = "Something is broken"
    repo_labels = await call(gh_router, "list_labels", repository=REPO)
    assert [label["name"] for label in repo_labels["labels"]] == ["bug", "enhancement", "mlops:train"]
    assert repo_labels["labels"][0] == {"name": "bug", "color": "ededed", "description": "Something is broken"}
    issue_labels = await call(gh_router, "list_labels", repository=REPO, issue_number=number)
    assert [label["name"] for label in issue_labels["labels"]] == ["mlops:train"]
    assert repo_labels["truncated"] is False


async def test_labels_listed_across_pages(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.add_issue(REPO, labels=[f"label-{i:02d}" for i in range(45)])
    listed = await call(gh_router, "list_labels", repository=REPO)
    assert len(listed["labels"]) == 45
    assert github.count("GET", "/labels") == 2  # PyGithub followed GitHub's Link header


async def test_over_long_label_is_refused_before_any_request(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    message = await call_error(gh_router, "add_labels", repository=REPO, issue_number=1, labels=["x" * 51])
    assert "labels.0" in message
    assert github.requests == []
