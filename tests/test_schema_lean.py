"""capabilities/schema.py: the lean schemas sent in tools/list, the same rules for every tool."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.capabilities.base import ToolInput, ToolResultModel
from mcp_server.capabilities.schema import input_schema, output_schema


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depth: int = Field(3, ge=1, description="how deep")


class A(BaseModel):
    kind: Literal["a"]


class B(BaseModel):
    kind: Literal["b"]
    size: int = 1


class Sample(ToolInput):
    uri: str = Field(description="where")
    ratio: int | float = Field(0.5, gt=0, description="a count or a fraction")
    inner: Inner | None = Field(None, description="settings")
    shapes: list[Annotated[A | B, Field(discriminator="kind")]] = Field(default_factory=list, description="shapes")
    pair: tuple[str, str] | None = Field(None, description="two names")
    patience: int | None = Field(10, ge=1, description="null: no early stopping")


class Result(ToolResultModel):
    key_outputs: ClassVar[tuple[str, ...] | None] = ("uri", "status", "scores")
    uri: str
    status: Literal["ok", "failed"] | None = None
    scores: dict[str, float] | None = None
    detail: list[dict[str, Any]] = Field(default_factory=list, description="not listed")


def test_input_schema_is_lean_and_standard() -> None:
    schema = input_schema(Sample)
    text = repr(schema)
    assert "title" not in text and "$ref" not in text and "$defs" not in text and "discriminator" not in text
    props = schema["properties"]
    assert props["ratio"] == {
        "default": 0.5,
        "description": "a count or a fraction",
        "exclusiveMinimum": 0,
        "type": "number",
    }
    assert props["inner"]["properties"]["depth"] == {
        "default": 3,
        "description": "how deep",
        "minimum": 1,
        "type": "integer",
    }
    assert "additionalProperties" not in props["inner"] and schema["additionalProperties"] is False
    assert "anyOf" not in props["inner"]  # Optional[X] = None is just an optional X
    assert [v["properties"]["kind"] for v in props["shapes"]["items"]["oneOf"]] == [{"const": "a"}, {"const": "b"}]
    assert props["pair"]["items"] == {"type": "string"} and props["pair"]["minItems"] == 2
    # null is "left out" where the default is null, but a meaning of its own next to another default
    assert props["patience"]["type"] == ["integer", "null"] and props["patience"]["default"] == 10
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"uri": "u", "ratio": 3, "shapes": [{"kind": "b", "size": 2}], "pair": ["x", "y"]})
    assert validator.is_valid({"uri": "u", "patience": None})
    assert not validator.is_valid({"uri": "u", "ratio": 0})  # the bound is enforced by clients too
    assert not validator.is_valid({"uri": "u", "colour": "red"})


def test_output_schema_lists_key_outputs_by_type_and_accepts_real_results() -> None:
    schema = output_schema(Result)
    assert schema == {
        "type": "object",
        "properties": {
            "uri": {"type": "string"},
            "status": {"type": ["string", "null"]},
            "scores": {"type": ["object", "null"]},
        },
    }
    validator = jsonschema.Draft202012Validator(schema)
    for result in (Result(uri="u"), Result(uri="u", status="ok", scores={"a": 1.0}, detail=[{"x": 1}])):
        assert validator.is_valid(result.model_dump(mode="json"))


def test_key_outputs_naming_a_missing_field_is_refused_at_build_time() -> None:
    class Typo(ToolResultModel):
        key_outputs: ClassVar[tuple[str, ...] | None] = ("uri", "urls")
        uri: str

    with pytest.raises(ValueError, match=r"Typo.key_outputs names fields it does not have: \['urls'\]"):
        output_schema(Typo)


def test_recursive_models_keep_their_definitions() -> None:
    class Node(ToolResultModel):
        name: str
        children: list[Node] = Field(default_factory=list)

    Node.model_rebuild()
    schema = output_schema(Node)
    assert jsonschema.Draft202012Validator(schema).is_valid({"name": "a", "children": [{"name": "b"}]})
