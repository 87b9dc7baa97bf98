"""The server under the official TypeScript SDK client (Claude Desktop, VS Code, Cursor, the MCP
Inspector): every tool's error message reaches the caller, a workflow's results pass the SDK's
own outputSchema validation and stay small, and the tool list is valid under strict ajv and fits
its token budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_server.client import result_text
from mcp_server.config import Config
from mcp_server.router import ERROR_META_KEY, ToolRouter
from mcp_server.server import UnifiedMLOpsMCPServer
from tests.e2e.ts_client import node_path, run_ts_client

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(node_path() is None, reason="node is not installed")]

TOKENS_PER_TOOL_BUDGET = 350  # cl100k tokens per tool, averaged over the whole tools/list response
WORKFLOW_RESULT_BUDGET = 2_500  # text tokens (what a model reads) of a plain workflow result
ANY_RESULT_BUDGET = 25_000  # Claude Code refuses results above this; checked on the whole result


def env(root: Path) -> dict[str, str]:
    return {"MLOPS_STORAGE_ROOT": str(root)}


def tools(root: Path) -> list[Any]:
    return UnifiedMLOpsMCPServer(Config.from_env(env(root))).router.list_tools()


# ----------------------------------------------------------------------------- tool list
def test_tool_list_is_strictly_valid_and_fits_the_token_budget(storage_root: Path) -> None:
    listed = run_ts_client("list", env(storage_root))
    assert listed["tools"] == len(tools(storage_root))
    assert listed["strict_problems"] == []
    per_tool = listed["tokens"] / listed["tools"]
    heaviest = sorted(listed["per_tool"].items(), key=lambda item: -item[1])[:5]
    assert per_tool <= TOKENS_PER_TOOL_BUDGET, (
        f"tools/list is {listed['tokens']} cl100k tokens for {listed['tools']} tools ({per_tool:.0f} a tool, "
        f"budget {TOKENS_PER_TOOL_BUDGET}); heaviest: {heaviest}. Shorten descriptions, list fewer "
        "key_outputs, or state shared facts once in the server instructions."
    )


# ----------------------------------------------------------------------------- errors
def example(schema: dict[str, Any], name: str) -> Any:
    """A well-formed value for a required input that names nothing that exists."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return example(schema[key][0], name)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "array":
        item = example(schema.get("items", {"type": "string"}), name)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "object":
        props = schema.get("properties", {})
        return {key: example(props[key], key) for key in schema.get("required", [])}
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    if name.endswith("_uri") or name.endswith("_uris"):
        return f"nothing/here/{name}.parquet"
    return {"model_name": "no-such-model", "environment": "NoSuchEnv-v0", "job_id": "job-0000"}.get(name, "x")


async def error_calls(router: ToolRouter) -> list[dict[str, Any]]:
    """One failing call per tool: its required inputs naming nothing that exists, or (for a tool
    that needs nothing, or that such inputs do not fail, e.g. a signature check) an unknown field."""
    calls = []
    for tool in router.list_tools():
        schema = tool.input_schema
        arguments = {key: example(schema["properties"][key], key) for key in schema.get("required", [])}
        if not arguments or not (await router.call(tool.name, arguments)).is_error:
            arguments = {**arguments, "no_such_field": 1}
        calls.append({"name": tool.name, "arguments": arguments})
    # Calls that fail schema validation (the three). An unknown tool is a JSON-RPC error
    # instead (the MCP spec's -32602): see test_unknown_tool_is_a_json_rpc_error_in_the_ts_client.
    calls += [
        {"name": "load_dataset", "arguments": {"s3_uri": 5}},
        {"name": "train_xgboost", "arguments": {}},
        {"name": "split_dataset", "arguments": {"dataset_s3_uri": "d.csv", "train_ratio": "most"}},
    ]
    return calls


async def test_every_tools_error_message_reaches_the_ts_client(storage_root: Path) -> None:
    router = UnifiedMLOpsMCPServer(Config.from_env(env(storage_root))).router
    calls = await error_calls(router)
    results = run_ts_client("calls", env(storage_root), {"calls": calls})["results"]
    assert len(results) == len(calls) >= len(router.tool_names) + 3
    for call, got in zip(calls, results, strict=True):
        label = f"{call['name']}({json.dumps(call['arguments'])})"
        assert got["thrown"] is None, f"{label}: the SDK threw instead of showing the tool's error: {got['thrown']}"
        assert got["isError"], f"{label} should have failed: {got['text'][:300]}"
        assert got["structuredContent"] is None, label
        # The caller reads exactly the server's own message (with its field and hint).
        expected = await router.call(call["name"], call["arguments"])
        assert got["text"] == result_text(expected), label
        assert got["meta"][ERROR_META_KEY]["kind"], label


async def test_unknown_tool_is_a_json_rpc_error_in_the_ts_client(storage_root: Path) -> None:
    calls = [{"name": "no_such_tool", "arguments": {}}]
    (got,) = run_ts_client("calls", env(storage_root), {"calls": calls})["results"]
    assert got["thrown"] and "-32602" in got["thrown"] and "Unknown tool 'no_such_tool'" in got["thrown"]


# ----------------------------------------------------------------------------- workflow
def write_dataset(root: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    (root / "data").mkdir()
    load_breast_cancer(as_frame=True).frame.to_csv(root / "data" / "bc.csv", index=False)


WORKFLOW = [
    ("load_dataset", {"s3_uri": "data/bc.csv"}),
    ("validate_data", {"data_s3_uri": "data/bc.csv", "required_columns": ["target"]}),
    (
        "preprocess_supervised",
        {"dataset_s3_uri": "data/bc.csv", "target_column": "target", "task_type": "classification"},
    ),
    (
        "split_dataset",
        {"dataset_s3_uri": "data/bc.processed.parquet", "stratify_column": "target", "output_prefix": "data/split"},
    ),
    (
        "train_random_forest",
        {
            "train_data_s3_uri": "data/split/train.parquet",
            "validation_data_s3_uri": "data/split/validation.parquet",
            "target_column": "target",
            "model_output_s3_uri": "models/rf",
            "random_state": 0,
            "hyperparameters": {"n_estimators": 40},
        },
    ),
    (
        "train_xgboost",  # 300 rounds: the result's history is summarised
        {
            "train_data_s3_uri": "data/split/train.parquet",
            "validation_data_s3_uri": "data/split/validation.parquet",
            "target_column": "target",
            "model_output_s3_uri": "models/xgb",
            "random_state": 0,
            "hyperparameters": {"n_estimators": 300, "early_stopping_rounds": None, "max_depth": 2},
        },
    ),
    ("evaluate_classifier", {"model_s3_uri": "models/rf", "test_data_s3_uri": "data/split/test.parquet"}),
    ("register_model", {"model_name": "bc-rf", "model_s3_uri": "models/rf"}),
    ("get_training_metrics", {"model_s3_uri": "models/xgb"}),
    ("load_model", {"model_s3_uri": "models/xgb"}),
    ("visualization", {"model_s3_uri": "models/rf", "plot_type": "feature_importance"}),
    ("compare_models", {"model_s3_uris": ["models/rf", "models/xgb"], "test_data_s3_uri": "data/split/test.parquet"}),
    ("get_model_version", {"model_name": "bc-rf", "version": "latest"}),
]
PLAIN_STEPS = {
    "load_dataset",
    "preprocess_supervised",
    "split_dataset",
    "train_random_forest",
    "train_xgboost",
    "evaluate_classifier",
    "register_model",
}


@pytest.mark.slow
def test_workflow_through_the_ts_client_validates_and_stays_small(storage_root: Path) -> None:
    write_dataset(storage_root)
    plan = {"calls": [{"name": name, "arguments": arguments} for name, arguments in WORKFLOW]}
    results = run_ts_client("calls", env(storage_root), plan)["results"]
    by_name = {}
    for (name, _), got in zip(WORKFLOW, results, strict=True):
        # A thrown error here is the SDK refusing structuredContent against the outputSchema.
        assert got["thrown"] is None, f"{name}: {got['thrown']}"
        assert not got["isError"], f"{name}: {got['text']}"
        summary, _, body = got["text"].partition("\n")
        assert summary and json.loads(body) == got["structuredContent"], name
        assert "\n" not in body and ": " not in body[:200], f"{name}: the JSON in the text is not compact"
        if name in PLAIN_STEPS:
            assert got["textTokens"] <= WORKFLOW_RESULT_BUDGET, f"{name}: {got['textTokens']} text tokens"
        assert got["tokens"] <= ANY_RESULT_BUDGET, f"{name}: {got['tokens']} tokens"
        by_name[name] = got
    xgb = by_name["train_xgboost"]["structuredContent"]
    assert xgb["history_total"] == 300 and len(xgb["history"]) <= 50
    assert xgb["history_s3_uri"].endswith("models/xgb/metadata.json")
    assert by_name["visualization"]["contentTypes"][:2] == ["text", "image"]
    assert by_name["get_model_version"]["structuredContent"]["version"] == 1
