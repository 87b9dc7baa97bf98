"""Model registry storage: gap-free version numbers and one production version, on S3 or locally.

Layout, under `registry/` in the bucket (or in the local storage root when no bucket is set):

    registry/<model>/versions/<n>.json   one document per version (record, status, history)
    registry/<model>/index.json          small per-model index: latest_version, production_version,
                                         production_history and at most one `pending` status change

Version numbers. The version document is the claim: a writer creates `versions/<n>.json`
create-only (S3 `IfNoneMatch="*"`, locally `os.link`), the first writer of n wins and a loser,
having written nothing, tries n+1. A writer only tries n once n-1 exists (it starts after the
index's latest_version, which only ever names claimed versions), so numbers have no gaps and no
duplicates, across threads and server processes alike. The index's latest_version is then raised
by compare-and-swap; it is a hint that may lag after a crash, so readers list the documents.

Statuses. A status change is planned from the index and the version documents and committed by a
single compare-and-swap of the index, which records the new production_version and the change set
as `pending`. The version documents are then updated (compare-and-swap again, idempotent: each
history entry carries the change's op_id) and `pending` is cleared. Anyone who finds a pending
change (a concurrent client, another server process, a retry after a crash) completes it before
planning its own, and readers show a pending change as applied: the index write is the commit
point, so two promotions racing always end with exactly one production version.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_server.common.bundles import now_iso
from mcp_server.common.exceptions import BadFormatError, ConflictError, InvalidInputError, NotFoundError
from mcp_server.common.logger import get_logger, is_secret_key, looks_secret
from mcp_server.common.model_names import model_name_problem
from mcp_server.common.s3_utils import Location, S3Utils, json_bytes, parse_json, wait_backoff

_log = get_logger(__name__)

REGISTRY_PREFIX = "registry"
SCHEMA_VERSION = 1
STATUSES = ("none", "staging", "production", "archived")
# Allowed status transitions. `none` is where a new version starts; production is left only for
# archived or staging (a production model is never silently "unregistered"); archived versions can
# be brought back (that is what rollback does).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "none": ("staging", "production", "archived"),
    "staging": ("production", "archived", "none"),
    "production": ("archived", "staging"),
    "archived": ("staging", "production"),
}
DEMOTION_TARGETS = ("archived", "staging")

METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/\-]{1,128}$")
_MAX_TAGS = 50
_MAX_TAG_VALUE = 256
_VERSION_FILE = re.compile(r"^([1-9][0-9]{0,8})\.json$")
_MAX_CLAIMS = 10_000  # each lost claim means another writer took that number: progress, not a spin
_MAX_CAS = 60
_MAX_PRODUCTION_HISTORY = 200
_SNAPSHOT_TRIES = 20


# ---------------------------------------------------------------------------- validation
def validate_model_name(name: str, field: str = "model_name") -> str:
    problem = model_name_problem(name) if isinstance(name, str) else "a model name must be a string"
    if problem:
        raise InvalidInputError(problem, field=field)
    return name


def validate_metrics(metrics: Mapping[str, Any] | None, field: str = "metrics") -> dict[str, float]:
    """Metric names must be usable in a search filter (`accuracy>=0.9`); values finite numbers."""
    out: dict[str, float] = {}
    for name, value in (metrics or {}).items():
        if not METRIC_NAME.fullmatch(str(name)):
            raise InvalidInputError(
                f"metric name {name!r} is not allowed",
                field=f"{field}.{name}",
                hint="Use letters, digits, '_', '.' or '-', starting with a letter or '_' (e.g. val_accuracy).",
            )
        number = _number(value)
        if number is None:
            raise InvalidInputError(f"metric {name!r} must be a finite number, not {value!r}", field=f"{field}.{name}")
        out[str(name)] = number
    return out


def validate_tags(tags: Mapping[str, Any] | None, field: str = "tags") -> dict[str, str]:
    tags = dict(tags or {})
    if len(tags) > _MAX_TAGS:
        raise InvalidInputError(f"{len(tags)} tags given; at most {_MAX_TAGS} are allowed", field=field)
    for key, value in tags.items():
        if not _TAG_KEY.fullmatch(str(key)):
            raise InvalidInputError(
                f"tag key {key!r} is not allowed",
                field=f"{field}.{key}",
                hint="Use 1-128 letters, digits, '_', '.', ':', '/' or '-'.",
            )
        if not isinstance(value, str) or len(value) > _MAX_TAG_VALUE:
            raise InvalidInputError(
                f"tag {key!r} must be a string of at most {_MAX_TAG_VALUE} characters", field=f"{field}.{key}"
            )
        if is_secret_key(str(key)) or looks_secret(value):
            # Tags are stored and returned to every reader: a secret there would leak.
            raise InvalidInputError(
                f"tag {key!r} looks like a secret (its name or value), and tags are shown to everyone",
                field=f"{field}.{key}",
                hint="Keep secrets in Secrets Manager; tag the secret's name instead of its value.",
            )
    return {str(k): str(v) for k, v in tags.items()}


def validate_status(status: str, field: str = "status") -> str:
    if status not in STATUSES:
        raise InvalidInputError(f"unknown status {status!r}", field=field, hint=f"Use one of {', '.join(STATUSES)}.")
    return status


def actor(explicit: str | None = None) -> str:
    """Who is acting: the caller's explicit name, else the server's USER, else `mcp-client`."""
    return (explicit or "").strip() or os.environ.get("USER") or "mcp-client"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def metrics_from_bundle(raw: Any) -> dict[str, float]:
    """Flatten a bundle's `metrics` to {name: number}, validation scores first.

    Trainers record `{"train": {...}, "validation": {...}}` (unsupervised and RL trainers flat
    values, or a per-iteration list whose last value is the final score). With a validation group,
    `accuracy` is the validation accuracy and training scores are kept as `train_accuracy`, so a
    search never mistakes a training score for a held-out one; without it, training scores are
    the metrics.
    """
    if not isinstance(raw, dict):
        return {}
    out: dict[str, float] = {}

    def take(group: Any, prefix: str = "") -> None:
        if not isinstance(group, dict):
            return
        for name, value in group.items():
            if isinstance(value, list) and value:
                value = value[-1]
            number = _number(value)
            key = f"{prefix}{name}"
            if number is not None and METRIC_NAME.fullmatch(key):
                out[key] = number

    take(raw)
    validation = next((raw[g] for g in ("validation", "val") if isinstance(raw.get(g), dict)), None)
    train = next((raw[g] for g in ("train", "training") if isinstance(raw.get(g), dict)), None)
    if validation is not None:
        take(train, "train_")
        take(validation)
    else:
        take(train)
    return out


# ---------------------------------------------------------------------------- documents
def _history_entry(change: Mapping[str, Any], op: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "from": change["from"],
        "to": change["to"],
        "at": op["at"],
        "by": op["by"],
        "reason": change.get("reason"),
        "op": change["op"],
        "op_id": op["op_id"],
    }


def _applied(doc: dict[str, Any], change: Mapping[str, Any], op: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` with `change` applied; `doc` itself when it already carries this op (idempotence)."""
    history = list(doc.get("history") or [])
    if any(entry.get("op_id") == op["op_id"] for entry in history):
        return doc
    return {**doc, "status": change["to"], "updated_at": op["at"], "history": [*history, _history_entry(change, op)]}


def _effective(doc: dict[str, Any], index: Mapping[str, Any] | None) -> dict[str, Any]:
    """A version document as readers must see it: with the index's committed pending change."""
    pending = (index or {}).get("pending")
    if pending:
        for change in pending["changes"]:
            if change["version"] == doc.get("version"):
                return _applied(doc, change, pending)
    return doc


@dataclass
class _Plan:
    changes: list[dict[str, Any]]
    production_version: int | None
    outcome: dict[str, Any]
    promoted: int | None = None  # the version that becomes production, for production_history


class RegistryStore:
    """The registry on top of `S3Utils`; safe to use from many threads and processes at once."""

    def __init__(self, storage: S3Utils, prefix: str = REGISTRY_PREFIX) -> None:
        self.storage = storage
        self.prefix = prefix

    # ------------------------------------------------------------------ locations
    def _loc(self, *parts: str) -> Location:
        return self.storage.resolve("/".join((self.prefix, *parts)), "model_name")

    def index_loc(self, name: str) -> Location:
        return self._loc(name, "index.json")

    def version_loc(self, name: str, version: int) -> Location:
        return self._loc(name, "versions", f"{version}.json")

    # ------------------------------------------------------------------ reads
    def _read_json(self, loc: Location) -> tuple[dict[str, Any], str]:
        data, tag = self.storage.read_versioned(loc)
        doc = parse_json(data, loc.uri)
        if not isinstance(doc, dict):
            raise BadFormatError(f"{loc.uri} is not a registry document", hint="Restore it from a backup.")
        return doc, tag

    def _read_index(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        try:
            return self._read_json(self.index_loc(name))
        except NotFoundError:
            return None, None

    def read_index(self, name: str) -> dict[str, Any] | None:
        """The model's index (latest/production version, pending change), or None before the first."""
        return self._read_index(name)[0]

    def catalog(self) -> dict[str, list[int]]:
        """Every registered model with its version numbers, from one listing of the prefix."""
        root = self.storage.resolve(self.prefix, "model_name")
        found: dict[str, list[int]] = {}
        for loc in self.storage.list_objects(root):
            parts = loc.key[len(root.key) + 1 :].split("/")
            if len(parts) == 3 and parts[1] == "versions" and model_name_problem(parts[0]) is None:
                match = _VERSION_FILE.fullmatch(parts[2])
                if match:
                    found.setdefault(parts[0], []).append(int(match.group(1)))
        return {name: sorted(numbers) for name, numbers in sorted(found.items())}

    def version_numbers(self, name: str) -> list[int]:
        prefix = self._loc(name, "versions")
        numbers = [
            int(m.group(1)) for loc in self.storage.list_objects(prefix) if (m := _VERSION_FILE.fullmatch(loc.name))
        ]
        return sorted(numbers)

    def _unknown_model(self, name: str) -> NotFoundError:
        known = list(self.catalog())
        shown = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
        hint = f"Registered models: {shown}." if known else "No model is registered yet; call register_model first."
        return NotFoundError(f"model {name!r} is not registered", field="model_name", hint=hint)

    def _unknown_version(self, name: str, version: int, numbers: list[int], field: str = "version") -> NotFoundError:
        span = f"1..{numbers[-1]}" if numbers else "none"
        return NotFoundError(f"model {name!r} has no version {version}", field=field, hint=f"Its versions are {span}.")

    def model_numbers(self, name: str) -> list[int]:
        """The version numbers of `name`; raises NotFoundError for an unknown model."""
        validate_model_name(name)
        numbers = self.version_numbers(name)
        if not numbers:
            raise self._unknown_model(name)
        return numbers

    def read_version(self, name: str, version: int, index: Mapping[str, Any] | None = None) -> dict[str, Any]:
        doc, _ = self._read_json(self.version_loc(name, version))
        return _effective(doc, index)

    def snapshot(
        self, name: str, numbers: list[int], skip_unreadable: bool = False
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The index and these version documents as of one moment.

        The documents are re-read while the index changed under us: otherwise a reader could
        catch a promotion half-applied (the new version production, the old one not yet demoted).
        A change still pending in the index is shown applied.
        """
        for attempt in range(_SNAPSHOT_TRIES):
            index, tag = self._read_index(name)
            docs = []
            for number in numbers:
                try:
                    docs.append(self._read_json(self.version_loc(name, number))[0])
                except (BadFormatError, NotFoundError) as exc:
                    if not skip_unreadable:
                        raise
                    _log.warning("skipping registry document %s v%s: %s", name, number, exc)
            if self._read_index(name)[1] == tag:
                break
            wait_backoff(attempt, base=0.005, cap=0.1)
        return index, [_effective(doc, index) for doc in docs]

    def list_versions(self, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """All versions of `name` (oldest first) and a summary (latest and production version)."""
        numbers = self.model_numbers(name)
        index, docs = self.snapshot(name, numbers)
        return docs, self.summary(index, numbers)

    @staticmethod
    def summary(index: Mapping[str, Any] | None, numbers: list[int]) -> dict[str, Any]:
        return {
            "latest_version": numbers[-1] if numbers else None,
            "production_version": (index or {}).get("production_version"),
        }

    def get_version(self, name: str, version: int | str) -> tuple[dict[str, Any], dict[str, Any]]:
        """One version (a number, `latest` or `production`) and the model's summary."""
        numbers = self.model_numbers(name)
        number: int | None
        if version == "latest":
            number = numbers[-1]
        elif version == "production":
            number = (self.read_index(name) or {}).get("production_version")
            if number is None:
                raise NotFoundError(
                    f"model {name!r} has no production version",
                    field="version",
                    hint="Promote one with update_model_status(status='production').",
                )
        else:
            number = int(version)
            if number not in numbers:
                raise self._unknown_version(name, number, numbers)
        index, docs = self.snapshot(name, [int(number)])
        return docs[0], self.summary(index, numbers)

    # ------------------------------------------------------------------ registration
    def register(self, name: str, record: Mapping[str, Any], by: str) -> tuple[dict[str, Any], Location]:
        """Store a new version of `name` with `record` as its content; returns (document, location)."""
        validate_model_name(name)
        index, _ = self._read_index(name)
        version = int((index or {}).get("latest_version") or 0) + 1
        claim = uuid.uuid4().hex
        at = now_iso()
        for _ in range(_MAX_CLAIMS):
            doc = {
                **record,
                "schema_version": SCHEMA_VERSION,
                "model_name": name,
                "version": version,
                "status": "none",
                "registered_by": by,
                "created_at": at,
                "updated_at": at,
                "registration_id": claim,
                "history": [
                    {
                        "from": None,
                        "to": "none",
                        "at": at,
                        "by": by,
                        "reason": "registered",
                        "op": "register",
                        "op_id": claim,
                    }
                ],
            }
            loc = self.version_loc(name, version)
            try:
                self.storage.create_only(loc, json_bytes(doc), "application/json")
                break
            except ConflictError:
                # On S3 a retried PUT whose first attempt landed also answers 412: check it is not ours.
                if self._claimed_by(loc, claim):
                    break
                version += 1
        else:
            raise ConflictError(f"could not claim a version number for {name!r}", hint="Retry the registration.")
        self._raise_latest(name, version, at)
        return doc, loc

    def _claimed_by(self, loc: Location, claim: str) -> bool:
        try:
            doc, _ = self._read_json(loc)
        except NotFoundError:
            return False
        return doc.get("registration_id") == claim

    def _new_index(self, name: str, at: str, latest: int = 0) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model_name": name,
            "latest_version": latest,
            "production_version": None,
            "production_history": [],
            "pending": None,
            "revision": 0,
            "created_at": at,
            "updated_at": at,
        }

    def _write_index(self, name: str, index: dict[str, Any], tag: str | None) -> str:
        # The revision makes every write differ, so a compare-and-swap never mistakes an index that
        # changed and changed back (same bytes, same ETag) for one that did not change.
        index = {**index, "revision": int(index.get("revision") or 0) + 1, "updated_at": now_iso()}
        loc = self.index_loc(name)
        if tag is None:
            return self.storage.create_only(loc, json_bytes(index), "application/json")
        return self.storage.write_if_match(loc, json_bytes(index), tag, "application/json")

    def _raise_latest(self, name: str, version: int, at: str) -> None:
        for attempt in range(_MAX_CAS):
            index, tag = self._read_index(name)
            if index is not None and int(index.get("latest_version") or 0) >= version:
                return
            updated = dict(index) if index is not None else self._new_index(name, at)
            updated["latest_version"] = version
            try:
                self._write_index(name, updated, tag)
                return
            except ConflictError:
                wait_backoff(attempt)
        # The version is registered; only the hint lags, and readers list the documents anyway.
        _log.warning("registry index of %s not updated to version %s (busy)", name, version)

    # ------------------------------------------------------------------ status changes
    def change_status(
        self,
        name: str,
        version: int,
        status: str,
        by: str,
        reason: str | None = None,
        demote_previous_to: str = "archived",
    ) -> dict[str, Any]:
        """Move `version` to `status`; promoting demotes the current production version."""
        validate_status(status)
        if demote_previous_to not in DEMOTION_TARGETS:
            raise InvalidInputError(
                f"demote_previous_to must be one of {', '.join(DEMOTION_TARGETS)}", field="demote_previous_to"
            )

        def plan(index: dict[str, Any], numbers: list[int]) -> _Plan:
            if version not in numbers:
                raise self._unknown_version(name, version, numbers)
            current = self.read_version(name, version)["status"]
            production = index.get("production_version")
            outcome: dict[str, Any] = {
                "model_name": name,
                "version": version,
                "previous_status": current,
                "status": status,
                "changed": current != status,
                "demoted": None,
                "production_version": production,
            }
            if current == status:
                return _Plan([], production, outcome)
            allowed = TRANSITIONS[current]
            if status not in allowed:
                raise InvalidInputError(
                    f"version {version} of {name!r} cannot go from {current} to {status}",
                    field="status",
                    hint=f"From {current} the allowed statuses are: {', '.join(allowed)}.",
                )
            changes = [{"version": version, "from": current, "to": status, "reason": reason, "op": "status_change"}]
            new_production = production
            if status == "production":
                new_production = version
                if production is not None and production != version:
                    why = f"version {version} promoted to production" + (f": {reason}" if reason else "")
                    changes.append(
                        {
                            "version": production,
                            "from": "production",
                            "to": demote_previous_to,
                            "reason": why,
                            "op": "demotion",
                        }
                    )
                    outcome["demoted"] = {
                        "version": production,
                        "previous_status": "production",
                        "status": demote_previous_to,
                    }
            elif current == "production":
                new_production = None
            outcome["production_version"] = new_production
            return _Plan(changes, new_production, outcome, promoted=version if status == "production" else None)

        return self._commit(name, by, plan)

    def rollback(self, name: str, by: str, to_version: int | None = None, reason: str | None = None) -> dict[str, Any]:
        """Make the previous production version (or `to_version`) production again; archive the current."""

        def plan(index: dict[str, Any], numbers: list[int]) -> _Plan:
            current = index.get("production_version")
            target = to_version
            if target is None:
                earlier = [e["version"] for e in index.get("production_history") or [] if e["version"] != current]
                if not earlier:
                    what = f"version {current} is the only version" if current is not None else "no version"
                    raise InvalidInputError(
                        f"nothing to roll back to: {what} of {name!r} has ever been in production",
                        field="model_name",
                        hint="Pass to_version to choose the version to put in production.",
                    )
                target = int(earlier[-1])
            elif target not in numbers:
                raise self._unknown_version(name, target, numbers, field="to_version")
            if target == current:
                raise InvalidInputError(
                    f"version {target} of {name!r} is already in production",
                    field="to_version",
                    hint="Pass another version, or leave to_version out to restore the previous production version.",
                )
            target_status = self.read_version(name, target)["status"]
            why = reason or "rollback"
            changes = [{"version": target, "from": target_status, "to": "production", "reason": why, "op": "rollback"}]
            if current is not None:
                changes.insert(
                    0,
                    {
                        "version": current,
                        "from": "production",
                        "to": "archived",
                        "reason": f"rolled back to version {target}: {why}",
                        "op": "rollback",
                    },
                )
            outcome = {
                "model_name": name,
                "from_version": current,
                "to_version": target,
                "to_previous_status": target_status,
                "from_status": "archived" if current is not None else None,
                "reason": why,
                "production_version": target,
            }
            return _Plan(changes, target, outcome, promoted=target)

        return self._commit(name, by, plan)

    def _index_for_change(self, name: str) -> tuple[dict[str, Any], str | None, list[int]]:
        validate_model_name(name)
        index, tag = self._read_index(name)
        numbers = self.version_numbers(name)
        if not numbers:
            raise self._unknown_model(name)
        if index is None:  # a registration crashed before writing the index: rebuild it
            index = self._new_index(name, now_iso(), latest=numbers[-1])
        return index, tag, numbers

    def _commit(
        self,
        name: str,
        by: str,
        planner: Callable[[dict[str, Any], list[int]], _Plan],
    ) -> dict[str, Any]:
        op_id = uuid.uuid4().hex
        attempted: _Plan | None = None
        for attempt in range(_MAX_CAS):
            index, tag, numbers = self._index_for_change(name)
            if attempted is not None and self._landed(name, index, op_id, attempted):
                if (index.get("pending") or {}).get("op_id") == op_id:
                    self._finish(name, index, tag)
                return attempted.outcome
            if index.get("pending"):
                self._finish(name, index, tag)
                continue
            plan = planner(index, numbers)
            if not plan.changes:
                return plan.outcome
            op = {"op_id": op_id, "at": now_iso(), "by": by, "changes": plan.changes}
            updated = {**index, "pending": op, "production_version": plan.production_version}
            if plan.promoted is not None:
                entry = {
                    "version": plan.promoted,
                    "at": op["at"],
                    "by": by,
                    "op": next(c["op"] for c in plan.changes if c["version"] == plan.promoted),
                    "op_id": op_id,
                }
                history = [*(index.get("production_history") or []), entry]
                updated["production_history"] = history[-_MAX_PRODUCTION_HISTORY:]
            attempted = plan
            try:
                new_tag = self._write_index(name, updated, tag)
            except ConflictError:
                wait_backoff(attempt)
                continue
            self._finish(name, {**updated, "revision": int(index.get("revision") or 0) + 1}, new_tag)
            return plan.outcome
        raise ConflictError(
            f"the registry entry of {name!r} is too busy to change right now", hint="Retry in a moment."
        )

    def _landed(self, name: str, index: Mapping[str, Any], op_id: str, plan: _Plan) -> bool:
        """Did an index write we saw fail in fact land (its response lost, the retry refused)?"""
        if (index.get("pending") or {}).get("op_id") == op_id:
            return True
        if any(e.get("op_id") == op_id for e in index.get("production_history") or []):
            return True
        doc = self.read_version(name, int(plan.changes[0]["version"]))
        return any(e.get("op_id") == op_id for e in doc.get("history") or [])

    def _finish(self, name: str, index: dict[str, Any], tag: str | None) -> None:
        """Apply a committed pending change to its version documents, then clear it."""
        op = index["pending"]
        for change in op["changes"]:
            self._apply(name, change, op)
        for attempt in range(_MAX_CAS):
            try:
                self._write_index(name, {**index, "pending": None}, tag)
                return
            except ConflictError:
                index, tag = self._read_index(name)  # type: ignore[assignment]
                if index is None or (index.get("pending") or {}).get("op_id") != op["op_id"]:
                    return  # someone else cleared it
                wait_backoff(attempt)
        raise ConflictError(
            f"the registry entry of {name!r} is too busy to change right now", hint="Retry in a moment."
        )

    def _apply(self, name: str, change: Mapping[str, Any], op: Mapping[str, Any]) -> None:
        loc = self.version_loc(name, int(change["version"]))
        for attempt in range(_MAX_CAS):
            doc, tag = self._read_json(loc)
            updated = _applied(doc, change, op)
            if updated is doc:
                return
            try:
                self.storage.write_if_match(loc, json_bytes(updated), tag, "application/json")
                return
            except ConflictError:
                wait_backoff(attempt)
        raise ConflictError(f"{loc.uri} is too busy to change right now", hint="Retry in a moment.")
