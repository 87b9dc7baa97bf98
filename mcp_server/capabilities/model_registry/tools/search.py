"""search_models: find model versions by name, status, tags and metric thresholds, in order, by pages.

Pages use keyset cursors: a cursor holds the sort key of the last version returned (and a hash of
the query), so the next page starts right after it even when versions are registered between calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.model_registry.schemas import SearchModelsInput, SearchModelsOutput
from mcp_server.capabilities.model_registry.store import METRIC_NAME, RegistryStore, validate_tags
from mcp_server.capabilities.model_registry.tools.views import version_view
from mcp_server.common.exceptions import InvalidInputError

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
_FILTER_HINT = "Write '<metric><op><number>', e.g. 'accuracy>=0.9'; op is one of >=, <=, >, <, ==, !=."
_FIELDS = ("model_name", "version", "created_at", "updated_at", "status")
_ORDER = re.compile(r"^\s*(\S+?)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)
_ORDER_HINT = (
    "Use '<field> [asc|desc]' with field model_name, version, created_at, updated_at, status or metrics.<name>."
)


@dataclass(frozen=True)
class MetricFilter:
    metric: str
    op: str
    value: float

    def holds(self, metrics: dict[str, float]) -> bool:
        got = metrics.get(self.metric)
        return got is not None and _OPS[self.op](got, self.value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value!r}"


def parse_metric_filter(text: str) -> MetricFilter:
    match = _FILTER.fullmatch(text)
    if not match:
        raise InvalidInputError(f"cannot parse metric filter {text!r}", field="metric", hint=_FILTER_HINT)
    name, op, raw = match.groups()
    name = name.removeprefix("metrics.")
    if not METRIC_NAME.fullmatch(name):
        raise InvalidInputError(f"{name!r} is not a metric name", field="metric", hint=_FILTER_HINT)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInputError(f"{raw!r} in {text!r} is not a number", field="metric", hint=_FILTER_HINT) from None
    if not math.isfinite(value):
        raise InvalidInputError(f"{raw!r} in {text!r} is not a finite number", field="metric", hint=_FILTER_HINT)
    return MetricFilter(name, op, value)


def parse_order_by(text: str | None) -> tuple[str, bool]:
    """(field or 'metrics.<name>', descending)."""
    if text is None or not text.strip():
        return "model_name", False
    match = _ORDER.fullmatch(text)
    if not match:
        raise InvalidInputError(f"cannot parse order_by {text!r}", field="order_by", hint=_ORDER_HINT)
    field, direction = match.group(1), (match.group(2) or "asc").lower()
    if field.startswith("metrics."):
        if not METRIC_NAME.fullmatch(field.removeprefix("metrics.")):
            raise InvalidInputError(f"{field!r} names no valid metric", field="order_by", hint=_ORDER_HINT)
    elif field not in _FIELDS:
        hint = f"To order by a metric write 'metrics.{field} {direction}'." if METRIC_NAME.fullmatch(field) else ""
        raise InvalidInputError(f"cannot order by {field!r}", field="order_by", hint=f"{_ORDER_HINT} {hint}".strip())
    return field, direction == "desc"


def _sort_key(doc: dict[str, Any], field: str) -> list[Any]:
    if field.startswith("metrics."):
        primary = (doc.get("metrics") or {}).get(field.removeprefix("metrics."))
    else:
        primary = doc.get(field)
    return [primary, doc["model_name"], int(doc["version"])]


def _compare(a: list[Any], b: list[Any], descending: bool) -> int:
    """Primary value (missing ones last in either direction), then model name and version ascending."""
    for position, (x, y) in enumerate(zip(a, b, strict=True)):
        if x is None or y is None:
            if x is None and y is None:
                continue
            return 1 if x is None else -1
        result = (x > y) - (x < y)
        if position == 0 and descending:
            result = -result
        if result:
            return result
    return 0


def _query_hash(params: SearchModelsInput, filters: list[MetricFilter], order: tuple[str, bool]) -> str:
    statuses = sorted([params.status] if isinstance(params.status, str) else params.status or [])
    query: list[Any] = [(params.name_contains or "").lower(), statuses, sorted((params.tags or {}).items())]
    query += [sorted(str(f) for f in filters), list(order)]
    return hashlib.sha256(json.dumps(query).encode()).hexdigest()[:16]


def _encode_cursor(query: str, key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"q": query, "k": key}).encode()).decode()


def _decode_cursor(cursor: str, query: str, field: str, order_field: str) -> list[Any]:
    numeric = order_field == "version" or order_field.startswith("metrics.")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        key = data["k"]
        valid = isinstance(key, list) and len(key) == 3 and isinstance(key[1], str) and type(key[2]) is int
        first = key[0]
        valid = valid and (first is None or (isinstance(first, int | float) if numeric else isinstance(first, str)))
    except (ValueError, KeyError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidInputError(
            "this is not a cursor returned by search_models", field=field, hint="Pass next_cursor unchanged."
        )
    if data.get("q") != query:
        raise InvalidInputError(
            "this cursor belongs to a different search",
            field=field,
            hint="Repeat the same name_contains, status, tags, metric and order_by, or start without a cursor.",
        )
    return list(key)


def _matching_versions(
    store: RegistryStore, params: SearchModelsInput, filters: list[MetricFilter]
) -> list[dict[str, Any]]:
    needle = (params.name_contains or "").lower()
    statuses = {params.status} if isinstance(params.status, str) else set(params.status or [])
    tags = validate_tags(params.tags)
    found = []
    for name, numbers in store.catalog().items():
        if needle not in name.lower():
            continue
        _, docs = store.snapshot(name, numbers, skip_unreadable=True)  # one bad document must not break search
        for doc in docs:
            if statuses and doc.get("status") not in statuses:
                continue
            doc_tags = doc.get("tags") or {}
            if any(doc_tags.get(k) != v for k, v in tags.items()):
                continue
            if all(f.holds(doc.get("metrics") or {}) for f in filters):
                found.append(doc)
    return found


def search_models(ctx: ToolContext, params: SearchModelsInput) -> ToolOutput:
    if params.cursor and params.page_token and params.cursor != params.page_token:
        raise InvalidInputError("cursor and page_token differ", field="page_token", hint="Pass only one of them.")
    raw_filters = [params.metric] if isinstance(params.metric, str) else params.metric or []
    filters = [parse_metric_filter(text) for text in raw_filters]
    field, descending = parse_order_by(params.order_by)
    query = _query_hash(params, filters, (field, descending))
    cursor = params.cursor or params.page_token
    after = _decode_cursor(cursor, query, "cursor" if params.cursor else "page_token", field) if cursor else None

    store = RegistryStore(ctx.storage)
    docs = _matching_versions(store, params, filters)
    docs.sort(key=cmp_to_key(lambda a, b: _compare(_sort_key(a, field), _sort_key(b, field), descending)))
    start = 0
    if after is not None:
        while start < len(docs) and _compare(_sort_key(docs[start], field), after, descending) <= 0:
            start += 1
    page = docs[start : start + params.limit]
    more = start + len(page) < len(docs)
    next_cursor = _encode_cursor(query, _sort_key(page[-1], field)) if more and page else None
    data = SearchModelsOutput(
        models=[version_view(store, doc) for doc in page],
        count=len(page),
        total_matches=len(docs),
        order_by=f"{field} {'desc' if descending else 'asc'}",
        next_cursor=next_cursor,
        next_page_token=next_cursor,
    )
    summary = f"{data.total_matches} matching model version(s); showing {data.count}" + (
        " (more: pass next_cursor)" if next_cursor else ""
    )
    return ToolOutput(data=data, summary=summary)
