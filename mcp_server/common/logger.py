"""Structured JSON logs on stderr, with secrets masked wherever they are nested.

stdout belongs to the MCP protocol, so nothing here ever writes to it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

MASK = "***"
# Keys whose values are secrets, matched case-insensitively anywhere in a key name.
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|api[_-]?key|access[_-]?key|private[_-]?key|credential"
    r"|authorization|webhook(_url)?|signature|smtp_pass|session[_-]?key)",
    re.IGNORECASE,
)
# Secret-looking values, masked even under innocent keys (a token pasted into a message).
_SECRET_VALUE = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}|https://hooks\.slack\.com/\S+|https://discord(app)?\.com/api/webhooks/\S+"
    r"|https://\S+\.webhook\.office\.com/\S+"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"  # an Authorization header value pasted into a message
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"  # user:password in a URL
    r"|(?<=[\"'\s(])[^/\s:@\"']+:[^/\s@\"']+(?=@[A-Za-z0-9]))"  # the same quoted without its scheme (botocore)
)

# `password='x'`, `"api_token": "x"`, `webhook_url=x` inside a message (a library quoting the
# kwargs it was given): the value is masked by the name in front of it.
# Starts only at the start of a word: unanchored, `[\w.-]*` would rescan a long word from every
# position (quadratic on a multi-megabyte argument).
_KEY_NAME = r"(?<![\w.-])[\w.-]*(?:" + _SECRET_KEY.pattern[1:-1] + r")[\w.-]*"
_SECRET_PAIR_QUOTED = re.compile(
    r"(?P<key>" + _KEY_NAME + r"['\"]?\s*[:=]\s*)(?P<q>['\"])(?P<value>.*?)(?P=q)", re.IGNORECASE
)
_SECRET_PAIR_BARE = re.compile(r"(?P<key>" + _KEY_NAME + r"\s*=\s*)(?P<value>[^\s,;&'\"()\[\]{}]+)", re.IGNORECASE)


def redact_text(text: str) -> str:
    """`text` with secret-looking values masked: tokens, URL credentials, values of secret names."""
    text = _SECRET_PAIR_QUOTED.sub(lambda m: f"{m['key']}{m['q']}{MASK}{m['q']}", text)
    text = _SECRET_PAIR_BARE.sub(lambda m: m["key"] + MASK, text)
    return _SECRET_VALUE.sub(MASK, text)


def is_secret_key(key: str) -> bool:
    """True for a name that says its value is a secret (`api_token`, `webhook_url`, `password`)."""
    return bool(_SECRET_KEY.search(key))


def looks_secret(text: str) -> bool:
    """True when `text` holds a secret-looking value (a token, a webhook URL, URL credentials)."""
    return bool(_SECRET_VALUE.search(text))


def redact(value: Any, _key: str | None = None) -> Any:
    """Return a copy of `value` with secrets masked, however deeply nested."""
    if _key is not None and _SECRET_KEY.search(_key) and not _is_empty(value):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if hasattr(value, "model_dump") and callable(value.model_dump):  # a pydantic model: by field name
        try:
            return redact(value.model_dump(mode="json"))
        except Exception:
            return _default(value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def _is_empty(value: Any) -> bool:
    # Not `value in (None, "", [], {})`: that compares element-wise for arrays and raises.
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def _default(value: Any) -> str:
    """How the JSON encoder writes any other object: its str, with secret-looking values masked."""
    return redact_text(str(value))


def _jsonable(value: Any) -> Any:
    """Something `json.dumps(allow_nan=False)` accepts: str keys, no NaN/inf, str for the rest."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _default(value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, Mapping):
            for key, value in redact(dict(extra)).items():
                entry.setdefault(str(key), value)  # a field never overrides ts/level/logger/msg
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        try:
            return json.dumps(entry, default=_default, allow_nan=False)
        except (TypeError, ValueError):  # odd keys or NaN: still one valid JSON line
            return json.dumps(_jsonable(entry), allow_nan=False)


def configure_logging(level: str = "INFO") -> None:
    """Send every log record, ours and libraries', to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become JSON records too, not raw stderr text
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def log_event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log `msg` with structured `fields` (masked like everything else)."""
    logger.log(level, msg, extra={"fields": fields})
