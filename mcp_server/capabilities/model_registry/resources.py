"""model_registry's MCP resources (registry entries and versions), the compare_and_promote
prompt, and completions of model names and versions."""

from __future__ import annotations

import re

import anyio.to_thread

from mcp_server.capabilities.base import (
    Completer,
    PromptArgumentSpec,
    PromptSpec,
    ResourceContent,
    ResourceTemplateSpec,
    tool_json,
)
from mcp_server.common.listing import list_keys
from mcp_server.common.services import Services

_INDEX = re.compile(r"^registry/([^/]+)/index\.json$")
_VERSION = re.compile(r"^registry/([^/]+)/versions/(\d+)\.json$")


async def _read_model(services: Services, arguments: dict[str, str]) -> ResourceContent:
    return await tool_json(services, "list_model_versions", {"model_name": arguments["model_name"]})


async def _read_version(services: Services, arguments: dict[str, str]) -> ResourceContent:
    raw = arguments["version"]
    version: int | str = int(raw) if raw.isdigit() else raw
    return await tool_json(services, "get_model_version", {"model_name": arguments["model_name"], "version": version})


def _model_names(services: Services) -> list[str]:
    return sorted({m.group(1) for k in list_keys(services.storage, "registry/") if (m := _INDEX.match(k))})


async def complete_model_name(services: Services, value: str, context: dict[str, str]) -> list[str]:
    return [n for n in await anyio.to_thread.run_sync(_model_names, services) if n.startswith(value)]


async def complete_version(services: Services, value: str, context: dict[str, str]) -> list[str]:
    name = context.get("model_name")
    if not name:
        return ["latest", "production"]
    keys = await anyio.to_thread.run_sync(list_keys, services.storage, f"registry/{name}/versions/")
    numbers = sorted(int(m.group(2)) for k in keys if (m := _VERSION.match(k)) and m.group(1) == name)
    return [v for v in [*map(str, numbers), "latest", "production"] if v.startswith(value)]


def _match_model(key: str) -> tuple[dict[str, str], str] | None:
    m = _INDEX.match(key)
    return ({"model_name": m.group(1)}, f"registered model {m.group(1)}") if m else None


def _match_version(key: str) -> tuple[dict[str, str], str] | None:
    m = _VERSION.match(key)
    return ({"model_name": m.group(1), "version": m.group(2)}, f"{m.group(1)} v{m.group(2)}") if m else None


def resource_templates() -> list[ResourceTemplateSpec]:
    names: dict[str, Completer] = {"model_name": complete_model_name}
    return [
        ResourceTemplateSpec(
            uri_template="mlops://registry/{model_name}",
            name="registered model",
            description="A registered model: every version with status, metrics, tags and lineage.",
            mime_type="application/json",
            read=_read_model,
            match_key=_match_model,
            complete=names,
        ),
        ResourceTemplateSpec(
            uri_template="mlops://registry/{model_name}/versions/{version}",
            name="model version",
            description="One registered version (a number, latest or production) with its status history.",
            mime_type="application/json",
            read=_read_version,
            match_key=_match_version,
            complete={**names, "version": complete_version},
        ),
    ]


def _compare_and_promote(arguments: dict[str, str]) -> str:
    name = arguments["model_name"]
    return (
        f"Decide whether a newer version of the registered model {name!r} should replace its production version.\n"
        f"1. Call list_model_versions with model_name={name!r} and note the production version and the newer "
        "candidates (status none or staging).\n"
        "2. Call compare_models with the candidates' and the production version's model_s3_uri and a held-out "
        "test_data_s3_uri (ask me for it if the lineage does not name one); read the ranking, the bootstrap "
        "intervals and McNemar's test.\n"
        "3. Only if a candidate is better beyond the confidence interval, call update_model_status with "
        "status=production for it (the old production version is archived) and give the reason; otherwise "
        "keep production as it is and say why.\n"
        "4. Summarise the decision with the metrics table."
    )


def prompt_specs() -> list[PromptSpec]:
    return [
        PromptSpec(
            name="compare_and_promote",
            title="Compare and promote",
            description="Compare a registered model's versions on test data and promote the better one.",
            arguments=(PromptArgumentSpec("model_name", "the registered model"),),
            render=_compare_and_promote,
            complete={"model_name": complete_model_name},
        )
    ]
