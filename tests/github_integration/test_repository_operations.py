"""Files, branches and pull requests against the loopback GitHub server."""

from __future__ import annotations

import pytest

from mcp_server.router import ToolRouter
from tests.github_integration.conftest import REPO
from tests.github_integration.loopback_github import LoopbackGitHub, git_blob_sha
from tests.helpers import call, call_error


async def test_get_file_returns_text_sha_and_size(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    got = await call(gh_router, "get_file", repository=REPO, path="configs/train.yaml")
    assert got["content"] == "algorithm: xgboost\n"
    assert got["sha"] == git_blob_sha(b"algorithm: xgboost\n")
    assert (got["path"], got["size"], got["untrusted"], got["truncated"]) == ("configs/train.yaml", 19, True, False)


async def test_get_file_at_ref(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    repo = github.repos[REPO]
    repo.branches["dev"] = "d" * 40
    repo.files[("dev", "README.md")] = b"dev readme\n"
    got = await call(gh_router, "get_file", repository=REPO, path="README.md", ref="dev")
    assert got["content"] == "dev readme\n"
    assert github.requests[-1].query == {"ref": ["dev"]}


@pytest.mark.parametrize("ref", ["refs/tags/v1.0", "refs/heads/dev"])
async def test_get_file_at_a_fully_written_ref(gh_router: ToolRouter, github: LoopbackGitHub, ref: str) -> None:
    repo = github.repos[REPO]
    repo.branches["dev"] = "d" * 40
    repo.tags["v1.0"] = "dev"
    repo.files[("dev", "README.md")] = b"dev readme\n"
    got = await call(gh_router, "get_file", repository=REPO, path="README.md", ref=ref)
    assert got["content"] == "dev readme\n"
    assert github.requests[-1].query == {"ref": [ref]}


@pytest.mark.parametrize("ref", ["refs/remotes/origin/main", "refs/tags/", "refs/heads/a..b", "refs/pull/1/head"])
async def test_get_file_refuses_other_full_refs_before_any_request(
    gh_router: ToolRouter, github: LoopbackGitHub, ref: str
) -> None:
    message = await call_error(gh_router, "get_file", repository=REPO, path="README.md", ref=ref)
    assert "ref" in message
    assert github.requests == []


async def test_get_file_refuses_binary_content(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.repos[REPO].files[("main", "model.bin")] = b"\x89PNG\r\n\x1a\n\x00\x00"
    message = await call_error(gh_router, "get_file", repository=REPO, path="model.bin")
    assert "binary file" in message and "text only" in message


async def test_get_file_of_a_directory_is_refused(gh_router: ToolRouter) -> None:
    message = await call_error(gh_router, "get_file", repository=REPO, path="configs")
    assert "configs is a directory" in message


async def test_get_missing_file_is_not_found(gh_router: ToolRouter) -> None:
    message = await call_error(gh_router, "get_file", repository=REPO, path="nope.txt")
    assert f"nope.txt does not exist in {REPO}" in message


@pytest.mark.parametrize(
    "path", ["../secrets.txt", "configs/../../x", "/etc/passwd", "a//b", "./README.md", "dir\\..\\x", "a/\x00b"]
)
async def test_path_traversal_is_refused_before_any_request(
    gh_router: ToolRouter, github: LoopbackGitHub, path: str
) -> None:
    message = await call_error(gh_router, "get_file", repository=REPO, path=path)
    assert message.startswith("Invalid arguments") and "path" in message
    message = await call_error(gh_router, "create_or_update_file", repository=REPO, path=path, content="x", message="m")
    assert "path" in message
    assert github.requests == []


async def test_create_then_update_file_with_its_sha(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    created = await call(
        gh_router,
        "create_or_update_file",
        repository=REPO,
        path="reports/run-1.md",
        content="# Run 1\n",
        message="Add report",
    )
    assert created["created"] is True
    assert created["sha"] == git_blob_sha(b"# Run 1\n")
    updated = await call(
        gh_router,
        "create_or_update_file",
        repository=REPO,
        path="reports/run-1.md",
        content="# Run 1 (final)\n",
        message="Update report",
        sha=created["sha"],
    )
    assert updated["created"] is False and updated["commit_sha"] != created["commit_sha"]
    assert github.repos[REPO].files[("main", "reports/run-1.md")] == b"# Run 1 (final)\n"


async def test_update_with_stale_sha_says_file_changed_and_how_to_get_sha(
    gh_router: ToolRouter, github: LoopbackGitHub
) -> None:
    stale = git_blob_sha(b"# ML models\n")
    github.repos[REPO].files[("main", "README.md")] = b"changed by someone else\n"
    message = await call_error(
        gh_router,
        "create_or_update_file",
        repository=REPO,
        path="README.md",
        content="mine",
        message="m",
        sha=stale,
    )
    assert f"README.md changed since sha {stale[:7]}" in message
    assert "get_file" in message
    assert github.repos[REPO].files[("main", "README.md")] == b"changed by someone else\n"


async def test_overwriting_an_existing_file_without_sha_is_refused(gh_router: ToolRouter) -> None:
    message = await call_error(
        gh_router, "create_or_update_file", repository=REPO, path="README.md", content="x", message="m"
    )
    assert "README.md already exists" in message and "get_file" in message


async def test_write_to_a_missing_branch_is_not_found(gh_router: ToolRouter) -> None:
    message = await call_error(
        gh_router, "create_or_update_file", repository=REPO, path="x.md", content="x", message="m", branch="nope"
    )
    assert "not found" in message


async def test_create_branch_from_default_and_from_another(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    repo = github.repos[REPO]
    first = await call(gh_router, "create_branch", repository=REPO, branch="mlops/run-1")
    assert first == {"ref": "refs/heads/mlops/run-1", "sha": repo.branches["main"]}
    repo.branches["mlops/run-1"] = "e" * 40
    repo.branches["other"] = "e" * 40
    second = await call(gh_router, "create_branch", repository=REPO, branch="mlops/run-2", from_branch="other")
    assert second["sha"] == "e" * 40


async def test_creating_an_existing_branch_is_an_error(gh_router: ToolRouter) -> None:
    message = await call_error(gh_router, "create_branch", repository=REPO, branch="main")
    assert "branch 'main' already exists" in message


async def test_branch_from_a_missing_branch_names_it(gh_router: ToolRouter) -> None:
    message = await call_error(gh_router, "create_branch", repository=REPO, branch="x", from_branch="ghost")
    assert "branch 'ghost' does not exist" in message


@pytest.mark.parametrize("branch", ["-f", "a..b", "refs/heads/x", "x.lock", "a b", "x~1", "@", ".hidden"])
async def test_bad_branch_names_are_refused(gh_router: ToolRouter, github: LoopbackGitHub, branch: str) -> None:
    message = await call_error(gh_router, "create_branch", repository=REPO, branch=branch)
    assert "branch" in message
    assert github.requests == []


async def test_create_pull_request_and_duplicate(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    await call(gh_router, "create_branch", repository=REPO, branch="feature")
    pull = await call(
        gh_router,
        "create_pull_request",
        repository=REPO,
        title="Add model",
        head="feature",
        base="main",
        body="Trained by MLOps",
        draft=True,
    )
    stored = github.repos[REPO].pulls[pull["number"]]
    assert (stored["title"], stored["body"], stored["draft"]) == ("Add model", "Trained by MLOps", True)
    assert pull["html_url"].endswith(f"/pull/{pull['number']}") and pull["draft"] is True
    message = await call_error(
        gh_router, "create_pull_request", repository=REPO, title="again", head="feature", base="main"
    )
    assert "A pull request already exists" in message


async def test_pull_request_from_missing_branch_names_the_field(gh_router: ToolRouter) -> None:
    message = await call_error(gh_router, "create_pull_request", repository=REPO, title="x", head="ghost", base="main")
    assert "head" in message and "invalid" in message


async def test_file_over_one_megabyte_is_refused_clearly(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.repos[REPO].files[("main", "data.csv")] = b"a,b\n" * 300_000
    message = await call_error(gh_router, "get_file", repository=REPO, path="data.csv")
    assert "1200000 bytes" in message and "1 MB" in message


async def test_long_text_file_is_truncated_and_says_so(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.repos[REPO].files[("main", "notes.md")] = ("é" * 100_000).encode()
    got = await call(gh_router, "get_file", repository=REPO, path="notes.md")
    assert got["truncated"] is True and len(got["content"]) == 40_000 and got["size"] == 200_000
