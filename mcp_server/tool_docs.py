"""The tool reference (docs/tools.md), generated from the tool specs so it cannot drift.

    python -m mcp_server.tool_docs > docs/tools.md

Every tool of the default configuration (all capabilities, not read-only), by capability: what
it does, its hints, every input with type, default and limits, and every output field (the key
ones, listed in `outputSchema`, marked). tests/test_tool_docs.py fails when the file is stale.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any

from mcp_server.capabilities import schema as lean
from mcp_server.config import Config
from mcp_server.server import INSTRUCTIONS, UnifiedMLOpsMCPServer

REGENERATE = "python -m mcp_server.tool_docs > docs/tools.md"
_LIMITS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length >= {}"),
    ("maxLength", "length <= {}"),
    ("minItems", "items >= {}"),
    ("maxItems", "items <= {}"),
)


def type_of(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_of(option) for option in schema[key])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {type_of(schema['items'])}"
    return str(kind)


def limits_of(schema: dict[str, Any]) -> str:
    return ", ".join(text.format(schema[key]) for key, text in _LIMITS if key in schema)


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def input_rows(properties: dict[str, Any], required: list[str], prefix: str = "") -> list[str]:
    rows = []
    for name, prop in properties.items():
        default = json.dumps(prop["default"]) if "default" in prop else ("required" if name in required else "")
        rows.append(
            f"| `{prefix}{name}` | {cell(type_of(prop))} | {cell(default)} | {cell(limits_of(prop))} "
            f"| {cell(prop.get('description', ''))} |"
        )
        if isinstance(prop.get("properties"), dict):  # a group such as hyperparameters: its fields too
            rows += input_rows(prop["properties"], prop.get("required", []), f"{prefix}{name}.")
    return rows


def render() -> str:
    with tempfile.TemporaryDirectory() as root:
        server = UnifiedMLOpsMCPServer(Config.from_env({"MLOPS_STORAGE_ROOT": root}))
    router = server.router
    lines = [
        "# Tool reference",
        "",
        f"Generated from the tool specs by `{REGENERATE}`; do not edit by hand.",
        "",
        "Conventions (the server's instructions to clients):",
        "",
        f"> {INSTRUCTIONS}",
        "",
        "Errors come back as `isError: true` results whose text says what was wrong and how to fix it "
        '(the error kind is in `_meta["mlops/error"]`); successes carry `structuredContent` and the '
        "same JSON, compact, after a one-line summary.",
    ]
    for capability in server.capabilities:
        names = [n for n in router.tool_names if router.capability_of(n) == capability.name]
        if not names:
            continue
        lines += ["", f"## {capability.name}", "", capability.description]
        for name in names:
            spec = router.spec(name)
            hints = [
                "read-only" if spec.read_only else "writes",
                *(["destructive"] if spec.destructive else []),
                "idempotent" if spec.idempotent else "not idempotent",
                *(["open world"] if spec.open_world else []),
            ]
            tool = next(t for t in router.list_tools() if t.name == name)
            lines += ["", f"### {name}", "", f"**{spec.title or name}** ({', '.join(hints)}). {spec.description}"]
            props = tool.input_schema.get("properties", {})
            lines += ["", "| input | type | default | limits | description |", "|---|---|---|---|---|"]
            lines += input_rows(props, tool.input_schema.get("required", [])) or ["| (none) | | | | |"]
            full = lean.output_schema(spec.output_model, every_field=True)
            keys = set((tool.output_schema or {}).get("properties", {}))
            lines += ["", "| output | type | description |", "|---|---|---|"]
            for field, prop in full.get("properties", {}).items():
                label = f"**`{field}`**" if field in keys else f"`{field}`"
                lines.append(f"| {label} | {cell(type_of(prop))} | {cell(prop.get('description', ''))} |")
    lines += ["", "Outputs in bold are the key outputs listed in the tool's `outputSchema`; results carry all."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
