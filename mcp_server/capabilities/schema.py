"""Lean JSON Schemas for `tools/list`, generated from every tool's pydantic models.

Every token of `tools/list` is paid on every conversation, so the schemas pydantic generates
are trimmed before they are sent, the same way for every tool:
- no generated `title`s (pydantic titles each property after its name: no value to a model);
- `$ref`s inlined (no `$defs` indirection; a recursive model keeps its `$defs`);
- `Optional[X] = None` becomes X (the field is optional anyway) in inputs, `type: [X, "null"]`
  in outputs (results do carry nulls and must still validate);
- only JSON Schema keywords: pydantic's `gt`/`ge`/`lt`/`le` (left behind on unions) are
  translated, OpenAPI's `discriminator` (refused by strict validators such as ajv) dropped;
- upper bounds of 10,000 and more (seeds, string and list lengths, step counts) are left out of
  input schemas: they only guard against absurd input, which the server refuses anyway, by
  name; published, they would cost tokens in every conversation and guide no model;
- output schemas list the key fields (`ToolResultModel.key_outputs`, default all) with their
  types, nested values by type only and nothing required or forbidden: looser than the model,
  so every real result validates; meanings are said once, in the tool's description.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

# pydantic leaves these on a union it cannot push them into; they mean the JSON Schema bounds.
_BOUND_KEYWORDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}
_DROPPED_KEYWORDS = {"title", "discriminator"}
_VALUE_KEYWORDS = {"default", "examples", "enum", "const"}  # their values are data, never rewritten
# What an output field keeps: its type (and, for arrays of plain values, their type). Enums go:
# the server writes the values, and a client reads them whatever they are.
_OUTPUT_KEYWORDS = {"type", "anyOf"}
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_GUARD_BOUND = 10_000  # upper bounds from here on are guards: checked by the server, not published


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The `inputSchema` of a tool: full detail (bounds, defaults, nested fields), no noise.

    Nested objects do not repeat `additionalProperties: false`: the server refuses unknown
    nested fields anyway, naming them; the top level keeps it, so clients see the rule once.
    """
    schema = _clean(_inline_refs(model.model_json_schema()), output=False)
    return {**_drop_nested_closed(schema), "additionalProperties": schema.get("additionalProperties", True)}


def output_schema(model: type[BaseModel], *, every_field: bool = False) -> dict[str, Any]:
    """The `outputSchema` of a tool: its key fields and their types; nested values by type only.

    `every_field` lists all fields with their descriptions (the generated tool reference).
    """
    schema = _clean(_inline_refs(model.model_json_schema(mode="serialization")), output=True)
    if every_field:
        return {k: v for k, v in schema.items() if k in ("type", "properties", "required")}
    properties = {name: _shallow(prop) for name, prop in schema.get("properties", {}).items()}
    keys = getattr(model, "key_outputs", None)
    if keys is not None:
        unknown = sorted(set(keys) - set(properties))
        if unknown:
            raise ValueError(f"{model.__name__}.key_outputs names fields it does not have: {unknown}")
        properties = {name: properties[name] for name in keys}
    return {"type": "object", "properties": properties}


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    if not defs:
        return schema

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise _Recursive
            target = resolve(copy.deepcopy(defs[name]), (*seen, name))
            siblings = {k: resolve(v, seen) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings}
        return {k: resolve(v, seen) for k, v in node.items() if k != "$defs"}

    try:
        return dict(resolve(schema, ()))
    except _Recursive:  # a recursive model cannot be inlined: keep its definitions
        return schema


class _Recursive(Exception):
    pass


def _clean(node: Any, *, output: bool) -> Any:
    if isinstance(node, list):
        return [_clean(item, output=output) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key in ("properties", "$defs", "patternProperties"):  # maps of names: the names are not keywords
            out[key] = {name: _clean(sub, output=output) for name, sub in value.items()}
        elif key in _VALUE_KEYWORDS:
            out[key] = value
        else:
            out[_BOUND_KEYWORDS.get(str(key), str(key))] = _clean(value, output=output)
    # Null is just "left out" for an input whose default is null; with another default (such as
    # early_stopping_rounds=10) null means something (off) and stays allowed.
    null_is_absent = not output and out.get("default") is None
    if not output:
        for bound in _UPPER_BOUNDS:
            value = out.get(bound)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= _GUARD_BOUND:
                del out[bound]
    if out.get("default", ...) is None:
        del out["default"]
    out = _collapse_union(out, output=not null_is_absent)
    if "enum" in out or "const" in out:  # the values say the type
        out.pop("type", None)
    prefix = out.get("prefixItems")
    if isinstance(prefix, list) and prefix and all(item == prefix[0] for item in prefix):
        # A tuple of one item type (e.g. a pair of column names): `items` says it in every dialect.
        out["items"] = out.pop("prefixItems")[0]
    return out


def _collapse_union(node: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """`anyOf` of a value and null, or of plain types only, written the short way; with
    `output` false, the null option is dropped (the field is simply left out instead)."""
    options = node.get("anyOf")
    if not isinstance(options, list):
        return node
    plain = [o for o in options if o != {"type": "null"}]
    nullable = len(plain) < len(options)
    if all(set(o) == {"type"} and isinstance(o["type"], str) for o in plain):
        types = [o["type"] for o in plain]
        if "integer" in types and "number" in types:  # every integer is a number
            types.remove("integer")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if nullable and output:
            types.append("null")
        return {**rest, "type": types[0] if len(types) == 1 else types}
    if nullable and len(plain) == 1:
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        (value,) = plain
        if not output:
            return {**value, **rest}
        if "enum" in value:  # the enum must admit the null too
            return {**value, **rest, "enum": [*value["enum"], None]}
        if isinstance(value.get("type"), str):
            return {**value, **rest, "type": [value["type"], "null"]}
    if nullable and not output:  # an optional input is simply left out
        return {**node, "anyOf": plain}
    return node


def _json_types(values: list[Any]) -> str | list[str]:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    found = sorted({names.get(type(v), "object") for v in values}, key=lambda t: (t == "null", t))
    if "integer" in found and "number" in found:
        found.remove("integer")
    return found[0] if len(found) == 1 else found


def _drop_nested_closed(node: Any) -> Any:
    if isinstance(node, list):
        return [_drop_nested_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "additionalProperties" and value is False:
            continue
        if key == "properties":
            out[key] = {name: _drop_nested_closed(sub) for name, sub in value.items()}
        else:
            out[key] = value if key in _VALUE_KEYWORDS else _drop_nested_closed(value)
    return out


def _shallow(node: dict[str, Any]) -> dict[str, Any]:
    """An output field by its type; what is nested inside it, by type only too."""
    out = {k: v for k, v in node.items() if k in _OUTPUT_KEYWORDS}
    values = node.get("enum", [node["const"]] if "const" in node else None)
    if values is not None and "type" not in out:  # an enum's values say its type
        out["type"] = _json_types(values)
    if "anyOf" in out:
        out["anyOf"] = [_shallow(option) for option in out["anyOf"]]
    items = node.get("items")
    if isinstance(items, dict) and isinstance(items.get("type"), str) and items["type"] != "object":
        out["items"] = {"type": items["type"]}
    return _collapse_union(out, output=True)
