"""ToolRouter with test-local fake capabilities: start-up checks, validation, error shaping,
result shaping, progress, running off the loop and cancellation."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from pydantic import Field

from mcp_server.capabilities.base import (
    Artifact,
    BaseCapability,
    ToolContext,
    ToolInput,
    ToolOutput,
    ToolResultModel,
    ToolSpec,
)
from mcp_server.client import result_text, structured
from mcp_server.common.exceptions import ConfigError, InvalidInputError, NotFoundError
from mcp_server.config import Config
from mcp_server.router import ERROR_META_KEY, MAX_RESULT_CHARS, ToolRouter
from tests.helpers import until

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class EchoInput(ToolInput):
    text: str = Field(description="what to echo")
    times: int = Field(1, ge=1, le=5, description="how often")


class EchoOutput(ToolResultModel):
    echoed: str
    thread: str


class NoInput(ToolInput):
    pass


class Empty(ToolResultModel):
    done: bool = True


class BigOutput(ToolResultModel):
    rows: list[dict[str, Any]]
    label: str


def big(ctx: ToolContext, params: NoInput) -> BigOutput:
    return BigOutput(rows=[{"i": i, "value": i * 0.5, "name": f"row-{i}"} for i in range(20_000)], label="big")


class SleepInput(ToolInput):
    seconds: float = Field(description="how long to sleep")


class Events:
    """What the fake tools saw, for the tests to inspect."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.contexts: list[ToolContext] = []
        self.started = threading.Event()
        self.cleaned_up = threading.Event()


EVENTS = Events()


def echo(ctx: ToolContext, params: EchoInput) -> EchoOutput:
    return EchoOutput(echoed=params.text * params.times, thread=threading.current_thread().name)


async def async_echo(ctx: ToolContext, params: EchoInput) -> EchoOutput:
    return EchoOutput(echoed=params.text, thread=threading.current_thread().name)


def fail_expected(ctx: ToolContext, params: NoInput) -> Empty:
    raise InvalidInputError("column 'price' is not in the data", field="target_column", hint="Use one of: a, b.")


def fail_not_found(ctx: ToolContext, params: NoInput) -> Empty:
    raise NotFoundError("s3://b/k does not exist", hint="Check the URI.")


def fail_unexpected(ctx: ToolContext, params: NoInput) -> Empty:
    raise KeyError("internal detail /srv/secret/path")


def exits(ctx: ToolContext, params: NoInput) -> Empty:
    raise SystemExit(2)  # what argparse does in a module's top-level code


def interrupts(ctx: ToolContext, params: NoInput) -> Empty:
    raise KeyboardInterrupt  # raised by tool code in its worker thread, not a Ctrl-C of the server


async def async_exits(ctx: ToolContext, params: NoInput) -> Empty:
    raise SystemExit(1)


def fail_nested_validation(ctx: ToolContext, params: NoInput) -> Empty:
    EchoInput.model_validate({"text": "x", "times": 99})
    return Empty()


def with_artifacts(ctx: ToolContext, params: NoInput) -> ToolOutput:
    return ToolOutput(
        data=Empty(),
        artifacts=[Artifact("s3://b/models/m1/model.skops", "model.skops", "application/octet-stream", "the model")],
        images=[PNG],
        summary="Wrote one model",
    )


def slow(ctx: ToolContext, params: SleepInput) -> Empty:
    EVENTS.order.append("slow started")
    time.sleep(params.seconds)
    EVENTS.order.append("slow finished")
    return Empty()


def fast(ctx: ToolContext, params: NoInput) -> Empty:
    EVENTS.order.append("fast finished")
    return Empty()


def cancellable(ctx: ToolContext, params: NoInput) -> Empty:
    EVENTS.contexts.append(ctx)
    EVENTS.started.set()
    deadline = time.monotonic() + 10
    while not ctx.cancelled.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # cleanup that must complete before the call is reported cancelled
    EVENTS.cleaned_up.set()
    ctx.check_cancelled()
    return Empty()


async def async_cancellable(ctx: ToolContext, params: NoInput) -> Empty:
    EVENTS.contexts.append(ctx)
    EVENTS.started.set()
    await anyio.sleep(10)
    return Empty()


def with_progress(ctx: ToolContext, params: NoInput) -> Empty:
    for step in range(3):
        ctx.report_progress(step + 1, 3, f"step {step + 1}")
    return Empty()


def writer(ctx: ToolContext, params: NoInput) -> Empty:
    return Empty()


def spec(name: str, fn: Any, input_model: type[ToolInput] = NoInput, output: type = Empty, **hints: bool) -> ToolSpec:
    flags = {"read_only": True, "destructive": False, "idempotent": True, "open_world": False, **hints}
    return ToolSpec(
        name=name,
        description=f"{name} tool",
        input_model=input_model,
        output_model=output,
        fn=fn,
        read_only=flags["read_only"],
        destructive=flags["destructive"],
        idempotent=flags["idempotent"],
        open_world=flags["open_world"],
    )


class AlphaCapability(BaseCapability):
    name = "alpha"

    def tool_specs(self) -> list[ToolSpec]:
        return [
            spec("echo", echo, EchoInput, EchoOutput),
            spec("async_echo", async_echo, EchoInput, EchoOutput),
            spec("fail_expected", fail_expected),
            spec("fail_not_found", fail_not_found),
            spec("fail_unexpected", fail_unexpected),
            spec("fail_nested_validation", fail_nested_validation),
            spec("exits", exits),
            spec("interrupts", interrupts),
            spec("async_exits", async_exits),
            spec("with_artifacts", with_artifacts, read_only=False),
            spec("big", big, output=BigOutput),
        ]


class BetaCapability(BaseCapability):
    name = "beta"

    def tool_specs(self) -> list[ToolSpec]:
        return [
            spec("slow", slow, SleepInput),
            spec("fast", fast),
            spec("cancellable", cancellable),
            spec("async_cancellable", async_cancellable),
            spec("with_progress", with_progress),
            spec("writer", writer, read_only=False, destructive=True, idempotent=False),
        ]


class ClashingCapability(BaseCapability):
    name = "clashing"

    def tool_specs(self) -> list[ToolSpec]:
        return [spec("echo", echo, EchoInput, EchoOutput)]


@pytest.fixture(autouse=True)
def fresh_events() -> None:
    global EVENTS
    EVENTS = Events()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config.from_env({"MLOPS_STORAGE_ROOT": str(tmp_path / "storage")})


@pytest.fixture
def fake_router(config: Config) -> ToolRouter:
    return ToolRouter([AlphaCapability(config), BetaCapability(config)], config)


def text_of(result: types.CallToolResult) -> str:
    return result_text(result)


# ----------------------------------------------------------------------------- start-up
def test_duplicate_tool_names_refused_at_start(config: Config) -> None:
    with pytest.raises(ConfigError) as err:
        ToolRouter([AlphaCapability(config), BetaCapability(config), ClashingCapability(config)], config)
    assert "'echo'" in str(err.value)
    assert "alpha" in str(err.value) and "clashing" in str(err.value)


def test_duplicate_refused_even_when_read_only_would_hide_it(config: Config) -> None:
    class WriterClash(BaseCapability):
        name = "writer_clash"

        def tool_specs(self) -> list[ToolSpec]:
            return [spec("writer", writer, read_only=False)]

    ro = Config.from_env({"MLOPS_STORAGE_ROOT": str(config.storage_root), "MLOPS_READ_ONLY": "true"})
    with pytest.raises(ConfigError, match="'writer'"):
        ToolRouter([BetaCapability(ro), WriterClash(ro)], ro)


def test_tools_listed_with_schemas_and_hints(fake_router: ToolRouter) -> None:
    tools = {t.name: t for t in fake_router.list_tools()}
    assert set(tools) == set(fake_router.tool_names)
    echo_tool = tools["echo"]
    assert echo_tool.input_schema["additionalProperties"] is False
    assert echo_tool.input_schema["required"] == ["text"]
    assert echo_tool.input_schema["properties"]["times"]["maximum"] == 5
    assert set(echo_tool.output_schema["properties"]) == {"echoed", "thread"}  # type: ignore[index]
    writer_tool = tools["writer"]
    assert writer_tool.annotations is not None
    assert (
        writer_tool.annotations.read_only_hint,
        writer_tool.annotations.destructive_hint,
        writer_tool.annotations.idempotent_hint,
        writer_tool.annotations.open_world_hint,
    ) == (False, True, False, False)
    assert fake_router.capability_of("slow") == "beta"


def test_read_only_router_drops_writing_tools(config: Config) -> None:
    ro = Config.from_env({"MLOPS_STORAGE_ROOT": str(config.storage_root), "MLOPS_READ_ONLY": "1"})
    router = ToolRouter([AlphaCapability(ro), BetaCapability(ro)], ro)
    assert "writer" not in router.tool_names and "with_artifacts" not in router.tool_names
    assert "echo" in router.tool_names
    assert all(t.annotations and t.annotations.read_only_hint for t in router.list_tools())


async def test_read_only_router_refuses_writing_tool_by_name(config: Config) -> None:
    ro = Config.from_env({"MLOPS_STORAGE_ROOT": str(config.storage_root), "MLOPS_READ_ONLY": "1"})
    with pytest.raises(MCPError, match=r"Unknown tool 'writer' \(the server is read-only\)"):
        await ToolRouter([BetaCapability(ro)], ro).call("writer", {})


# ----------------------------------------------------------------------------- errors
async def test_unknown_tool_is_a_json_rpc_invalid_params_error(fake_router: ToolRouter) -> None:
    with pytest.raises(MCPError) as raised:
        await fake_router.call("does_not_exist", {})
    assert raised.value.code == types.INVALID_PARAMS == -32602
    assert "Unknown tool 'does_not_exist'" in raised.value.message and "tools/list" in raised.value.message


async def test_validation_error_names_the_field(fake_router: ToolRouter) -> None:
    result = await fake_router.call("echo", {"text": "hi", "times": 9})
    assert result.is_error
    assert "times:" in text_of(result) and "less than or equal to 5" in text_of(result)
    assert result.structured_content is None
    assert result.meta == {ERROR_META_KEY: {"kind": "invalid_input", "tool": "echo"}}


async def test_missing_and_unknown_fields_are_named(fake_router: ToolRouter) -> None:
    missing = await fake_router.call("echo", {})
    assert "text: required field is missing" in text_of(missing)
    unknown = await fake_router.call("echo", {"text": "a", "colour": "red"})
    assert "colour: unknown field" in text_of(unknown)
    wrong_type = await fake_router.call("echo", {"text": "a", "times": "many"})
    assert "times:" in text_of(wrong_type)
    assert all(r.is_error for r in (missing, unknown, wrong_type))


async def test_none_arguments_are_validated_like_empty(fake_router: ToolRouter) -> None:
    result = await fake_router.call("echo", None)
    assert result.is_error and "text: required field is missing" in text_of(result)


async def test_mlops_error_becomes_is_error_with_field_and_hint(fake_router: ToolRouter) -> None:
    result = await fake_router.call("fail_expected", {})
    assert result.is_error
    assert text_of(result) == "target_column: column 'price' is not in the data. Use one of: a, b."
    # No structured content (the output schema would refuse it); the kind, field and hint in _meta.
    assert result.structured_content is None
    assert result.meta == {
        ERROR_META_KEY: {"kind": "invalid_input", "field": "target_column", "hint": "Use one of: a, b."}
    }
    not_found = await fake_router.call("fail_not_found", {})
    assert not_found.structured_content is None
    assert not_found.meta is not None and not_found.meta[ERROR_META_KEY]["kind"] == "not_found"


async def test_unexpected_exception_is_short_error_with_traceback_only_in_logs(
    fake_router: ToolRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = await fake_router.call("fail_unexpected", {})
    assert result.is_error
    text = text_of(result)
    assert text.startswith("fail_unexpected failed unexpectedly (KeyError)")
    assert "Traceback" not in text and "/srv/secret/path" not in text
    assert result.structured_content is None
    assert result.meta == {ERROR_META_KEY: {"kind": "internal_error", "type": "KeyError"}}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is KeyError
    assert "fail_unexpected" in errors[0].getMessage()


@pytest.mark.parametrize("tool", ["exits", "interrupts", "async_exits"])
async def test_system_exit_in_tool_code_is_an_error_result_and_the_router_keeps_serving(
    fake_router: ToolRouter, tool: str
) -> None:
    result = await fake_router.call(tool, {})
    assert result.is_error
    assert f"{tool} failed: the code it ran tried to stop the process" in text_of(result)
    assert "still running" in text_of(result) and "Traceback" not in text_of(result)
    after = await fake_router.call("echo", {"text": "still here"})
    assert not after.is_error and structured(after)["echoed"] == "still here"


async def test_cancellation_still_propagates_through_the_base_exception_guard(fake_router: ToolRouter) -> None:
    with anyio.move_on_after(0.2) as scope:
        await fake_router.call("async_cancellable", {})
    assert scope.cancelled_caught  # not turned into an error result


async def test_validation_error_raised_inside_tool_is_reported_as_input_error(fake_router: ToolRouter) -> None:
    result = await fake_router.call("fail_nested_validation", {})
    assert result.is_error
    assert "times:" in text_of(result) and "Traceback" not in text_of(result)


# ----------------------------------------------------------------------------- results
async def test_structured_content_and_text_carry_the_same_json(fake_router: ToolRouter) -> None:
    result = await fake_router.call("echo", {"text": "ab", "times": 2})
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["echoed"] == "abab"
    summary, body = text_of(result).split("\n")
    # Without a summary of its own the tool gets one from its scalar outputs; the JSON is compact.
    assert summary.startswith("echo: echoed=abab, thread=")
    assert json.loads(body) == result.structured_content
    assert body == json.dumps(result.structured_content, separators=(",", ":"))


async def test_summary_precedes_the_json_in_text(fake_router: ToolRouter) -> None:
    result = await fake_router.call("with_artifacts", {})
    text = result.content[0].text  # type: ignore[union-attr]
    first, rest = text.split("\n", 1)
    assert first == "Wrote one model"
    assert json.loads(rest) == result.structured_content == {"done": True}
    assert structured(result) == {"done": True}


async def test_artifacts_become_resource_links_and_images_image_content(fake_router: ToolRouter) -> None:
    result = await fake_router.call("with_artifacts", {})
    kinds = [type(item) for item in result.content]
    assert kinds == [types.TextContent, types.ImageContent, types.ResourceLink]
    image = result.content[1]
    assert isinstance(image, types.ImageContent)
    assert image.mime_type == "image/png" and base64.b64decode(image.data) == PNG
    link = result.content[2]
    assert isinstance(link, types.ResourceLink)
    assert (str(link.uri), link.name, link.mime_type, link.description) == (
        "s3://b/models/m1/model.skops",
        "model.skops",
        "application/octet-stream",
        "the model",
    )


async def test_sync_tool_runs_in_worker_thread_async_tool_on_loop(fake_router: ToolRouter) -> None:
    sync_out = structured(await fake_router.call("echo", {"text": "x"}))
    async_out = structured(await fake_router.call("async_echo", {"text": "x"}))
    assert sync_out["thread"] != threading.current_thread().name
    assert async_out["thread"] == threading.current_thread().name


async def test_progress_reported_from_worker_thread(fake_router: ToolRouter) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def sender(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await fake_router.call("with_progress", {}, sender)
    assert not result.is_error
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_progress_failure_does_not_fail_the_tool(fake_router: ToolRouter) -> None:
    async def broken(progress: float, total: float | None, message: str | None) -> None:
        raise ConnectionError("client went away")

    result = await fake_router.call("with_progress", {}, broken)
    assert not result.is_error


# ----------------------------------------------------------------------------- concurrency
async def test_slow_sync_tool_does_not_block_a_concurrent_call(fake_router: ToolRouter) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(fake_router.call, "slow", {"seconds": 2})
        await until(lambda: "slow started" in EVENTS.order, what="the slow tool to start")
        result = await fake_router.call("fast", {})
        assert not result.is_error
    assert EVENTS.order == ["slow started", "fast finished", "slow finished"]


async def test_cancelling_a_sync_call_sets_cancelled_and_waits_for_the_worker(fake_router: ToolRouter) -> None:
    outcome: list[Any] = []

    async def run() -> None:
        outcome.append(await fake_router.call("cancellable", {}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await until(EVENTS.started.is_set, what="the tool to start")
        tg.cancel_scope.cancel()
    # The cancel only returns once the worker has seen the flag and finished its cleanup.
    assert EVENTS.contexts[0].cancelled.is_set()
    assert EVENTS.cleaned_up.is_set()
    assert outcome == []


async def test_cancelling_an_async_call_sets_cancelled(fake_router: ToolRouter) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(fake_router.call, "async_cancellable", {})
        await until(EVENTS.started.is_set, what="the tool to start")
        tg.cancel_scope.cancel()
    assert EVENTS.contexts[0].cancelled.is_set()


def test_check_cancelled_raises_clear_error(fake_router: ToolRouter) -> None:
    ctx = fake_router.make_context()
    ctx.check_cancelled()  # not cancelled: no-op
    ctx.cancelled.set()
    with pytest.raises(Exception, match="cancelled; nothing was written"):
        ctx.check_cancelled()


async def test_text_alone_carries_the_result_for_clients_that_drop_structured_content(
    fake_router: ToolRouter,
) -> None:
    result = await fake_router.call("with_artifacts", {})
    text_only = types.CallToolResult(content=result.content, is_error=False)
    assert structured(text_only) == result.structured_content == {"done": True}


async def test_oversized_result_is_shortened_and_stored_whole(fake_router: ToolRouter) -> None:
    result = await fake_router.call("big", {})
    assert not result.is_error
    summary, body = text_of(result).split("\n")
    assert len(body) <= MAX_RESULT_CHARS and "shortened; the full result: " in summary
    out = structured(result)
    assert (
        out["label"] == "big"
        and 1 <= len(out["rows"]) <= 50
        and out["rows"][0] == {"i": 0, "value": 0.0, "name": "row-0"}
    )
    truncated = out["result_truncated"]
    full = json.loads(fake_router.storage.read_bytes(fake_router.storage.resolve(truncated["full_result_s3_uri"])))
    assert len(full["rows"]) == 20_000 and truncated["characters"] > MAX_RESULT_CHARS
    assert truncated["full_result_s3_uri"].endswith(".json") and "/results/big-" in truncated["full_result_s3_uri"]


async def test_read_only_server_shortens_without_writing(config: Config) -> None:
    ro = Config.from_env({"MLOPS_STORAGE_ROOT": str(config.storage_root), "MLOPS_READ_ONLY": "1"})
    result = await ToolRouter([AlphaCapability(ro)], ro).call("big", {})
    assert structured(result)["result_truncated"]["full_result_s3_uri"] is None
    assert not (config.storage_root / "results").exists()


# ----------------------------------------------------------------------------- strict scalars
class Knobs(ToolInput):
    wait: bool = True
    n: int = Field(1, ge=1)
    ratio: float | None = None
    layers: list[int] = []
    nested: EchoInput | None = None


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"wait": "yes"}, "wait: must be true or false, not 'yes'"),
        ({"wait": 1}, "wait: must be true or false, not 1"),
        ({"n": True}, "n: must be a number, not true"),
        ({"ratio": False}, "ratio: must be a number, not false"),
        ({"ratio": "Infinity"}, "ratio: must be a finite number"),
        ({"ratio": float("nan")}, "ratio: must be a finite number"),
        ({"layers": [4, True]}, "layers: [1]: must be a number, not true"),
        ({"nested": {"text": "a", "times": True}}, "nested: times: must be a number, not true"),
    ],
)
def test_numbers_refuse_booleans_and_booleans_refuse_everything_else(arguments: dict[str, Any], expected: str) -> None:
    from pydantic import ValidationError

    from mcp_server.router import format_validation_error

    with pytest.raises(ValidationError) as err:
        Knobs.model_validate(arguments)
    assert expected in format_validation_error(err.value)


def test_numeric_strings_and_real_booleans_are_accepted() -> None:
    knobs = Knobs.model_validate({"wait": False, "n": "3", "ratio": "0.25", "layers": ["8", 4]})
    assert (knobs.wait, knobs.n, knobs.ratio, knobs.layers) == (False, 3, 0.25, [8, 4])


def test_strict_scalars_add_nothing_to_the_schema() -> None:
    schema = Knobs.model_json_schema()
    assert schema["properties"]["wait"] == {"default": True, "title": "Wait", "type": "boolean"}


def test_a_secret_given_in_the_wrong_field_is_not_quoted_back() -> None:
    from pydantic import ValidationError

    from mcp_server.router import format_validation_error

    token = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"
    with pytest.raises(ValidationError) as err:
        Knobs.model_validate({"wait": token})
    text = format_validation_error(err.value)
    assert "wait: must be true or false" in text and token[:24] not in text
