"""The rule for model names, shared by the registry and by training configs (issue bodies)."""

from __future__ import annotations

import re

NAME_RULE = "use 1-128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def model_name_problem(name: str) -> str | None:
    """Why `name` is not a valid model name, or None."""
    if not _NAME.fullmatch(name) or ".." in name:
        return f"{name!r} is not a valid model name: {NAME_RULE}"
    return None
