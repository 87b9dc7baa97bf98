"""What GitHub accepts as repository, branch, path and label names, checked before any request.

A name that reaches a URL path unchecked could walk to another endpoint (`../../user`), so every
rule here errs on the side of refusing; each message says what is allowed.
"""

from __future__ import annotations

import re

# Owner: GitHub user/organisation names (letters, digits, single hyphens, not at the ends); GitHub
# Enterprise also allows '_' (names normalised from an identity provider).
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_]|-(?=[A-Za-z0-9_])){0,38}$")
_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
REPOSITORY_RULE = (
    "use owner/name: the owner is letters, digits and single hyphens (not first or last); "
    "the name is letters, digits, '.', '_' or '-'"
)


def repository_problem(value: str) -> str | None:
    parts = value.split("/")
    if len(parts) != 2:
        return f"{value!r} is not owner/name; {REPOSITORY_RULE}"
    owner, name = parts
    if not _OWNER.fullmatch(owner):
        return f"owner {owner!r} is not a GitHub account name; {REPOSITORY_RULE}"
    if not _REPO.fullmatch(name) or set(name) == {"."}:
        return f"repository name {name!r} is not valid; {REPOSITORY_RULE}"
    return None


def content_path_problem(value: str) -> str | None:
    """A file path inside the repository: relative, no '..', '.' or empty segments."""
    if not value:
        return "a path is required"
    if _CONTROL.search(value) or "\\" in value:
        return "the path contains control characters or backslashes"
    if value.startswith("/"):
        return "the path must be relative to the repository root (no leading '/')"
    segments = value.split("/")
    if any(s == ".." for s in segments):
        return "the path may not contain '..'"
    if any(s in ("", ".") for s in segments):
        return "the path has an empty or '.' segment; write it as dir/file.ext"
    return None


_QUALIFIED = ("refs/heads/", "refs/tags/")


def ref_problem(value: str, qualified: bool = False) -> str | None:
    """git check-ref-format rules for a branch (or tag/sha) name. `qualified`: a ref to read at
    may also be written in full, `refs/heads/<branch>` or `refs/tags/<tag>`."""
    if qualified and value.startswith(_QUALIFIED):
        value = value.split("/", 2)[2]
    if not value:
        return "a branch name is required"
    if value.startswith(("-", "/")) or value.endswith(("/", ".", ".lock")):
        return "a branch name may not start with '-' or '/', nor end with '/', '.' or '.lock'"
    if ".." in value or "@{" in value or "//" in value or value == "@" or _REF_FORBIDDEN.search(value):
        return "a branch name may not contain '..', '@{', '//', spaces, control characters or ~^:?*[\\"
    if any(part.startswith(".") for part in value.split("/")):
        return "a branch name component may not start with '.'"
    if value.startswith("refs/"):
        if qualified:
            return "give a branch, tag or commit sha, or refs/heads/<branch> or refs/tags/<tag>"
        return "give the branch name without refs/heads/"
    return None


def read_ref_problem(value: str) -> str | None:
    return ref_problem(value, qualified=True)


def label_problem(value: str) -> str | None:
    if not value:
        return "a label name is required"
    if len(value) > 50:
        return "GitHub labels are at most 50 characters"
    if _CONTROL.search(value):
        return "the label contains control characters"
    return None
