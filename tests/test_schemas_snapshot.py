"""The public face of the server: every tool's name, schemas and annotations.

`tests/snapshots/tools.json` records them so that any change to the contract shows up in review.
After an intended change, rewrite it with

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_schemas_snapshot.py

Independently of the snapshot, every tool must meet the structural rules checked below.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from mcp_server.config import Config
from mcp_server.server import UnifiedMLOpsMCPServer

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools.json"
UPDATE_COMMAND = "UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_schemas_snapshot.py"
HINTS = ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint")


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    root = tmp_path_factory.mktemp("snapshot-root")
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(root)})  # all capabilities, not read-only
    return UnifiedMLOpsMCPServer(config).router.list_tools()


def describe(tools: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tool in sorted(tools, key=lambda t: t.name):
        assert tool.annotations is not None, tool.name
        out[tool.name] = {
            "title": tool.title,
            "description": tool.description,
            "annotations": {hint: getattr(tool.annotations, hint) for hint in HINTS},
            "input_schema": tool.input_schema,
            "output_schema": tool.output_schema,
        }
    return out


def test_tool_schemas_match_snapshot(tools: list[Any]) -> None:
    current = describe(tools)
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
        return
    if not SNAPSHOT.exists():
        pytest.fail(f"{SNAPSHOT} is missing; create it with:\n    {UPDATE_COMMAND}")
    recorded = json.loads(SNAPSHOT.read_text())
    added = sorted(set(current) - set(recorded))
    removed = sorted(set(recorded) - set(current))
    changed = sorted(
        f"{name}.{part}"
        for name in set(current) & set(recorded)
        for part in current[name]
        if current[name][part] != recorded[name].get(part)
    )
    if added or removed or changed:
        pytest.fail(
            "The tool contract differs from tests/snapshots/tools.json:\n"
            f"  added tools:   {added}\n  removed tools: {removed}\n  changed:       {changed}\n"
            "If the change is intended, rewrite the snapshot and review its diff:\n"
            f"    {UPDATE_COMMAND}\n"
            "    git diff tests/snapshots/tools.json"
        )


def test_every_tool_has_a_usable_contract(tools: list[Any]) -> None:
    problems: list[str] = []
    assert tools, "the server lists no tools"
    for tool in tools:
        name = tool.name
        if not re.fullmatch(r"[a-z][a-z0-9_]{2,63}", name):
            problems.append(f"{name}: name is not snake_case")
        if not (tool.description or "").strip():
            problems.append(f"{name}: no description")
        schema = tool.input_schema
        if schema.get("type") != "object":
            problems.append(f"{name}: input schema is not an object")
        if schema.get("additionalProperties") is not False:
            problems.append(f"{name}: input schema accepts unknown fields (subclass ToolInput)")
        for prop, spec in schema.get("properties", {}).items():
            if not str(spec.get("description", "")).strip():
                problems.append(f"{name}.{prop}: input property has no description")
        for model, spec in schema.get("$defs", {}).items():
            if spec.get("type") == "object" and "properties" in spec and spec.get("additionalProperties") is not False:
                problems.append(f"{name}: nested input model {model} accepts unknown fields")
        for field in schema.get("required", []):
            if field not in schema.get("properties", {}):
                problems.append(f"{name}: required field {field} is not a property")
        output = tool.output_schema
        if not output or output.get("type") != "object":
            problems.append(f"{name}: output schema is not an object")
        annotations = tool.annotations
        if annotations is None:
            problems.append(f"{name}: no annotations")
            continue
        for hint in HINTS:
            if not isinstance(getattr(annotations, hint), bool):
                problems.append(f"{name}: annotation {hint} is not set")
        if annotations.read_only_hint and annotations.destructive_hint:
            problems.append(f"{name}: read-only tools cannot be destructive")
    assert not problems, "Tool contract problems:\n  " + "\n  ".join(problems)


def test_schemas_are_plain_json(tools: list[Any]) -> None:
    for tool in tools:
        round_trip = json.loads(json.dumps({"in": tool.input_schema, "out": tool.output_schema}))
        assert round_trip == {"in": tool.input_schema, "out": tool.output_schema}, tool.name


# JSON Schema 2020-12 keywords the generated schemas may use; anything else (pydantic's `gt`,
# OpenAPI's `discriminator`, a leftover `title`) is refused by strict validators or is noise.
KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "enum", "const",
    "anyOf", "oneOf", "allOf", "not", "default", "description", "examples", "$defs", "$ref",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "uniqueItems", "format", "minProperties", "maxProperties",
}  # fmt: skip


def schema_keywords(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= schema_keywords(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("properties", "$defs"):  # maps of names, not of keywords
                for sub in value.values():
                    found |= schema_keywords(sub)
                found.add(key)
            elif key not in ("default", "examples", "enum", "const"):  # values, not schemas
                found.add(key)
                found |= schema_keywords(value)
            else:
                found.add(key)
    return found


def test_schemas_are_valid_json_schema_with_standard_keywords_only(tools: list[Any]) -> None:
    import jsonschema

    for tool in tools:
        for part, schema in (("input", tool.input_schema), ("output", tool.output_schema)):
            jsonschema.Draft202012Validator.check_schema(schema)
            unknown = schema_keywords(schema) - KEYWORDS
            assert not unknown, f"{tool.name} {part} schema uses non-JSON-Schema keywords {sorted(unknown)}"


def test_schemas_carry_no_generated_titles(tools: list[Any]) -> None:
    for tool in tools:
        assert "title" not in schema_keywords(tool.input_schema) | schema_keywords(tool.output_schema), tool.name


def test_pca_n_components_bound_is_a_json_schema_bound(tools: list[Any]) -> None:
    n_components = next(t for t in tools if t.name == "train_pca").input_schema["properties"]["n_components"]
    assert n_components["exclusiveMinimum"] == 0 and "gt" not in n_components
