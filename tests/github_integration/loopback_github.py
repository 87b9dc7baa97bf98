"""A loopback GitHub REST server: the subset of GitHub's API the github_integration tools use,
served over real HTTP on 127.0.0.1 under `/api/v3` (as GitHub Enterprise does), state in memory.

PyGithub is pointed at `base_url` and talks to it exactly as to GitHub; tests reuse it (the
pipeline tests too). Switches inject what GitHub does when things go wrong: `fail()` queues error
statuses (500s, 409s, ...), `primary_rate_limit()` / `secondary_rate_limit()` answer as GitHub's
rate limiter does, and a `read_only_token` gets 403 with the permission GitHub names. Every request
is recorded (`requests`), so a test can count POSTs or look at the headers that were sent.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/api/v3"
TOKEN = "ghp_" + "LoopbackT0kenForTests0000000000000000"
STAMP = "2026-01-01T00:00:00Z"


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Failure:
    status: int
    method: str | None
    path: re.Pattern[str] | None
    times: int
    body: dict[str, Any]
    headers: dict[str, str]
    after_success: bool  # do the work, then answer with the failure (a write whose answer was lost)


@dataclass
class Repo:
    full_name: str
    default_branch: str = "main"
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    tags: dict[str, str] = field(default_factory=dict)  # tag -> the branch whose files it shows
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (branch, path) -> content
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1


class GitHubError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "documentation_url": "https://docs.github.com/rest", **extra}


class LoopbackGitHub:
    """Start with `with LoopbackGitHub() as gh:`; `gh.base_url` is the API URL for GITHUB_API_URL."""

    def __init__(self, token: str = TOKEN, read_only_token: str | None = None) -> None:
        self.token = token
        self.read_only_token = read_only_token
        self.repos: dict[str, Repo] = {}
        self.requests: list[Recorded] = []
        self._failures: list[Failure] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1000)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LoopbackGitHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="loopback-github", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.origin + PREFIX

    def env(self) -> dict[str, str]:
        """Settings that point the MCP server at this GitHub, with pacing off."""
        return {
            "GITHUB_API_URL": self.base_url,
            "GITHUB_TOKEN": self.token,
            "MLOPS_OUTBOUND_ALLOW": self.origin,
            "MLOPS_GITHUB_SECONDS_BETWEEN_REQUESTS": "0",
            "MLOPS_GITHUB_SECONDS_BETWEEN_WRITES": "0",
        }

    # ------------------------------------------------------------------ state set-up
    def add_repo(self, full_name: str, default_branch: str = "main", files: dict[str, str] | None = None) -> Repo:
        with self._lock:
            repo = Repo(full_name, default_branch)
            repo.branches[default_branch] = self._commit_sha()
            for path, text in (files or {}).items():
                repo.files[(default_branch, path)] = text.encode()
            self.repos[full_name] = repo
            return repo

    def add_issue(
        self,
        full_name: str,
        title: str = "an issue",
        body: str = "",
        labels: list[str] | None = None,
        author: str = "octocat",
    ) -> int:
        with self._lock:
            repo = self.repos[full_name]
            issue = self._new_issue(repo, title, body, labels or [], author)
            return int(issue["number"])

    def add_comments(self, full_name: str, number: int, count: int, author: str = "octocat") -> None:
        with self._lock:
            repo = self.repos[full_name]
            for i in range(count):
                self._new_comment(repo, number, f"comment {i + 1}", author)

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        after_success: bool = False,
        **extra: Any,
    ) -> None:
        """Answer the next `times` matching requests (method, path regex) with `status`; with
        `after_success`, the request is carried out first (GitHub did it, the answer was an error)."""
        body = {"message": message or _REASONS.get(status, "Error"), **extra}
        with self._lock:
            self._failures.append(
                Failure(status, method, re.compile(path) if path else None, times, body, headers or {}, after_success)
            )

    def primary_rate_limit(self, reset_in: int = 3600, **match: Any) -> int:
        """The next request is refused by the primary rate limit; returns the reset epoch."""
        reset = int(time.time()) + reset_in
        self.fail(
            403,
            message="API rate limit exceeded for user ID 1.",
            headers={"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
            **match,
        )
        return reset

    def secondary_rate_limit(self, retry_after: int, **match: Any) -> None:
        self.fail(
            403,
            message="You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            headers={"Retry-After": str(retry_after)},
            **match,
        )

    def count(self, method: str, path_contains: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and path_contains in r.path)

    # ------------------------------------------------------------------ JSON shapes
    def _api(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": 1, "type": "User", "url": self._api(f"/users/{login}")}

    def _label(self, repo: Repo, name: str) -> dict[str, Any]:
        if name not in repo.labels:  # GitHub creates an unknown label when it is applied
            repo.labels[name] = {
                "id": next(self._ids),
                "url": self._api(f"/repos/{repo.full_name}/labels/{name}"),
                "name": name,
                "color": "ededed",
                "description": None,
                "default": False,
            }
        return repo.labels[name]

    def _commit_sha(self) -> str:
        return hashlib.sha1(str(next(self._ids)).encode()).hexdigest()

    def _new_issue(self, repo: Repo, title: str, body: str | None, labels: list[str], author: str) -> dict[str, Any]:
        number = repo.next_number
        repo.next_number += 1
        url = f"/repos/{repo.full_name}/issues/{number}"
        issue = {
            "id": next(self._ids),
            "number": number,
            "url": self._api(url),
            "comments_url": self._api(url + "/comments"),
            "html_url": f"{self.origin}/{repo.full_name}/issues/{number}",
            "repository_url": self._api(f"/repos/{repo.full_name}"),
            "title": title,
            "body": body,
            "state": "open",
            "labels": [self._label(repo, name) for name in dict.fromkeys(labels)],
            "user": self._user(author),
            "assignees": [],
            "comments": 0,
            "author_association": "OWNER",
            "created_at": STAMP,
            "updated_at": STAMP,
        }
        repo.issues[number] = issue
        repo.comments[number] = []
        return issue

    def _new_comment(self, repo: Repo, number: int, body: str, author: str) -> dict[str, Any]:
        cid = next(self._ids)
        comment = {
            "id": cid,
            "url": self._api(f"/repos/{repo.full_name}/issues/comments/{cid}"),
            "html_url": f"{self.origin}/{repo.full_name}/issues/{number}#issuecomment-{cid}",
            "issue_url": self._api(f"/repos/{repo.full_name}/issues/{number}"),
            "body": body,
            "user": self._user(author),
            "author_association": "OWNER",
            "created_at": STAMP,
            "updated_at": STAMP,
        }
        repo.comments[number].append(comment)
        repo.issues[number]["comments"] += 1
        return comment

    def _content(self, repo: Repo, branch: str, path: str, data: bytes, with_content: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": git_blob_sha(data),
            "size": len(data),
            "url": self._api(f"/repos/{repo.full_name}/contents/{path}?ref={branch}"),
            "html_url": f"{self.origin}/{repo.full_name}/blob/{branch}/{path}",
            "git_url": None,
            "download_url": None,
        }
        if with_content and len(data) > 1024 * 1024:  # GitHub leaves out files over 1 MB
            out["encoding"], out["content"] = "none", ""
        elif with_content:
            out["encoding"] = "base64"
            out["content"] = base64.encodebytes(data).decode()  # GitHub wraps the base64 in lines
        return out

    # ------------------------------------------------------------------ routing
    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        path, query = unquote(parts.path), parse_qs(parts.query)
        with self._lock:
            self.requests.append(Recorded(method, path, query, headers, raw))
            for failure in self._failures:
                matches = failure.method in (None, method) and (failure.path is None or failure.path.search(path))
                if failure.times > 0 and matches:
                    failure.times -= 1
                    if failure.after_success:
                        self._serve(method, path, query, headers, raw)
                    return failure.status, failure.body, failure.headers
            return self._serve(method, path, query, headers, raw)

    def _serve(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if not path.startswith(PREFIX + "/"):
            return 404, {"message": "Not Found"}, {}
        auth = headers.get("authorization", "")
        given = auth.split(" ", 1)[1] if " " in auth else ""
        if given not in (self.token, self.read_only_token) or not given:
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"message": "Problems parsing JSON"}, {}
        try:
            return self._route(method, path[len(PREFIX) :], query, body, read_only=given != self.token)
        except GitHubError as exc:
            return exc.status, exc.body, {}

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, read_only: bool
    ) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not m or m.group(1) not in self.repos:
            raise GitHubError(404, "Not Found")
        repo, rest = self.repos[m.group(1)], m.group(2) or ""
        if read_only and method != "GET":
            permission = "contents=write" if "/contents/" in rest or "/git/" in rest else "issues=write"
            if rest == "/pulls":
                permission = "pull_requests=write"
            return (
                403,
                {"message": "Resource not accessible by personal access token"},
                {"X-Accepted-GitHub-Permissions": permission},
            )
        for pattern, verb, handler in self._routes():
            found = re.fullmatch(pattern, rest)
            if found and verb == method:
                return handler(repo, query, body, *found.groups())
        raise GitHubError(404, "Not Found")

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            (r"", "GET", self._get_repo),
            (r"/issues", "POST", self._create_issue),
            (r"/issues/(\d+)", "GET", self._get_issue),
            (r"/issues/(\d+)", "PATCH", self._edit_issue),
            (r"/issues/(\d+)/comments", "GET", self._list_comments),
            (r"/issues/(\d+)/comments", "POST", self._create_comment),
            (r"/issues/(\d+)/labels", "GET", self._issue_labels),
            (r"/issues/(\d+)/labels", "POST", self._add_labels),
            (r"/issues/(\d+)/labels/(.+)", "DELETE", self._remove_label),
            (r"/labels", "GET", self._repo_labels),
            (r"/contents/(.+)", "GET", self._get_contents),
            (r"/contents/(.+)", "PUT", self._put_contents),
            (r"/git/ref/heads/(.+)", "GET", self._get_ref),
            (r"/git/refs", "POST", self._create_ref),
            (r"/pulls", "POST", self._create_pull),
        ]

    # ------------------------------------------------------------------ handlers
    def _get_repo(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
        owner, name = repo.full_name.split("/")
        return (
            200,
            {
                "id": 1,
                "name": name,
                "full_name": repo.full_name,
                "owner": self._user(owner),
                "private": False,
                "url": self._api(f"/repos/{repo.full_name}"),
                "html_url": f"{self.origin}/{repo.full_name}",
                "default_branch": repo.default_branch,
            },
            {},
        )

    def _issue(self, repo: Repo, number: str) -> dict[str, Any]:
        issue = repo.issues.get(int(number))
        if issue is None:
            raise GitHubError(404, "Not Found")
        return issue

    def _create_issue(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not body.get("title"):
            raise GitHubError(
                422, "Validation Failed", errors=[{"resource": "Issue", "field": "title", "code": "missing_field"}]
            )
        issue = self._new_issue(repo, body["title"], body.get("body"), body.get("labels") or [], "mlops-bot")
        issue["assignees"] = [self._user(login) for login in body.get("assignees") or []]
        return 201, issue, {}

    def _get_issue(self, repo: Repo, query: Any, body: Any, number: str) -> tuple[int, Any, dict[str, str]]:
        return 200, self._issue(repo, number), {}

    def _edit_issue(self, repo: Repo, query: Any, body: Any, number: str) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(repo, number)
        if body.get("state") not in (None, "open", "closed"):
            raise GitHubError(
                422, "Validation Failed", errors=[{"resource": "Issue", "field": "state", "code": "invalid"}]
            )
        for key in ("title", "body", "state"):
            if key in body:
                issue[key] = body[key]
        if "labels" in body:
            issue["labels"] = [self._label(repo, name) for name in dict.fromkeys(body["labels"])]
        return 200, issue, {}

    def _page(self, items: list[Any], query: dict[str, list[str]], path: str) -> tuple[int, Any, dict[str, str]]:
        size = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            headers["Link"] = f'<{self._api(path)}?per_page={size}&page={page + 1}>; rel="next"'
        return 200, chunk, headers

    def _list_comments(self, repo: Repo, query: Any, body: Any, number: str) -> tuple[int, Any, dict[str, str]]:
        self._issue(repo, number)
        return self._page(repo.comments[int(number)], query, f"/repos/{repo.full_name}/issues/{number}/comments")

    def _create_comment(self, repo: Repo, query: Any, body: Any, number: str) -> tuple[int, Any, dict[str, str]]:
        self._issue(repo, number)
        if not isinstance(body, dict) or not body.get("body"):
            raise GitHubError(
                422,
                "Validation Failed",
                errors=[{"resource": "IssueComment", "field": "body", "code": "missing_field"}],
            )
        return 201, self._new_comment(repo, int(number), body["body"], "mlops-bot"), {}

    def _issue_labels(self, repo: Repo, query: Any, body: Any, number: str) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(repo, number)
        return self._page(issue["labels"], query, f"/repos/{repo.full_name}/issues/{number}/labels")

    def _add_labels(self, repo: Repo, query: Any, body: Any, number: str) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(repo, number)
        names = body.get("labels", []) if isinstance(body, dict) else body
        present = {label["name"] for label in issue["labels"]}
        issue["labels"] += [self._label(repo, n) for n in dict.fromkeys(names) if n not in present]
        return 200, issue["labels"], {}

    def _remove_label(
        self, repo: Repo, query: Any, body: Any, number: str, name: str
    ) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(repo, number)
        if name not in {label["name"] for label in issue["labels"]}:
            raise GitHubError(404, "Label does not exist")
        issue["labels"] = [label for label in issue["labels"] if label["name"] != name]
        return 200, issue["labels"], {}

    def _repo_labels(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
        return self._page(list(repo.labels.values()), query, f"/repos/{repo.full_name}/labels")

    def _branch(self, repo: Repo, query: dict[str, list[str]] | None, body: Any = None) -> str:
        branch = (query or {}).get("ref", [None])[0] or (body or {}).get("branch") or repo.default_branch
        # Like GitHub, a ref may be written in full; tags here name the branch they point into.
        if branch.startswith("refs/heads/"):
            branch = branch.removeprefix("refs/heads/")
        elif branch.startswith("refs/tags/") and branch.removeprefix("refs/tags/") in repo.tags:
            branch = repo.tags[branch.removeprefix("refs/tags/")]
        if branch not in repo.branches:
            raise GitHubError(404, f"No commit found for the ref {branch}")
        return str(branch)

    def _get_contents(self, repo: Repo, query: Any, body: Any, path: str) -> tuple[int, Any, dict[str, str]]:
        branch = self._branch(repo, query)
        if (branch, path) in repo.files:
            return 200, self._content(repo, branch, path, repo.files[(branch, path)]), {}
        listing = [
            self._content(repo, branch, p, d, with_content=False)
            for (b, p), d in repo.files.items()
            if b == branch and p.startswith(path + "/")
        ]
        if listing:
            return 200, listing, {}
        raise GitHubError(404, "Not Found")

    def _put_contents(self, repo: Repo, query: Any, body: Any, path: str) -> tuple[int, Any, dict[str, str]]:
        branch = self._branch(repo, None, body)
        data = base64.b64decode(body["content"])
        current = repo.files.get((branch, path))
        if current is not None and "sha" not in body:
            raise GitHubError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if current is not None and body["sha"] != git_blob_sha(current):
            raise GitHubError(409, f"{path} does not match {body['sha']}")
        if current is None and "sha" in body:
            raise GitHubError(422, f"{path} does not exist; sha given for a new file")
        repo.files[(branch, path)] = data
        commit = self._commit_sha()
        repo.branches[branch] = commit
        content = self._content(repo, branch, path, data, with_content=False)
        return (
            201 if current is None else 200,
            {
                "content": content,
                "commit": {
                    "sha": commit,
                    "url": self._api(f"/repos/{repo.full_name}/git/commits/{commit}"),
                    "message": body.get("message"),
                },
            },
            {},
        )

    def _ref(self, repo: Repo, branch: str) -> dict[str, Any]:
        sha = repo.branches[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "url": self._api(f"/repos/{repo.full_name}/git/refs/heads/{branch}"),
            "object": {"sha": sha, "type": "commit", "url": self._api(f"/repos/{repo.full_name}/git/commits/{sha}")},
        }

    def _get_ref(self, repo: Repo, query: Any, body: Any, branch: str) -> tuple[int, Any, dict[str, str]]:
        if branch not in repo.branches:
            raise GitHubError(404, "Not Found")
        return 200, self._ref(repo, branch), {}

    def _create_ref(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
        ref, sha = body.get("ref", ""), body.get("sha", "")
        if not ref.startswith("refs/heads/"):
            raise GitHubError(422, "Reference name must start with 'refs/'")
        branch = ref[len("refs/heads/") :]
        if branch in repo.branches:
            raise GitHubError(422, "Reference already exists")
        if sha not in repo.branches.values():
            raise GitHubError(422, "Object does not exist")
        repo.branches[branch] = sha
        for (b, p), data in list(repo.files.items()):
            if repo.branches.get(b) == sha and b != branch:
                repo.files[(branch, p)] = data
        return 201, self._ref(repo, branch), {}

    def _create_pull(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
        head, base = body.get("head", ""), body.get("base", "")
        head_branch = head.split(":", 1)[-1]
        for name, branch in (("head", head_branch), ("base", base)):
            if branch not in repo.branches:
                raise GitHubError(
                    422, "Validation Failed", errors=[{"resource": "PullRequest", "field": name, "code": "invalid"}]
                )
        for pull in repo.pulls.values():
            if pull["head"]["ref"] == head_branch and pull["base"]["ref"] == base and pull["state"] == "open":
                raise GitHubError(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {head}.",
                        }
                    ],
                )
        number = repo.next_number
        repo.next_number += 1
        pull = {
            "id": next(self._ids),
            "number": number,
            "url": self._api(f"/repos/{repo.full_name}/pulls/{number}"),
            "html_url": f"{self.origin}/{repo.full_name}/pull/{number}",
            "state": "open",
            "draft": bool(body.get("draft")),
            "title": body.get("title"),
            "body": body.get("body"),
            "head": {"ref": head_branch, "sha": repo.branches[head_branch]},
            "base": {"ref": base, "sha": repo.branches[base]},
            "user": self._user("mlops-bot"),
        }
        repo.pulls[number] = pull
        return 201, pull, {}


_REASONS = {
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _handler_for(github: LoopbackGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as requests' connection pool expects

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, extra = github.handle(self.command, self.path, headers, raw)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler


@contextmanager
def loopback_github(**kwargs: Any) -> Iterator[LoopbackGitHub]:
    with LoopbackGitHub(**kwargs) as github:
        yield github
