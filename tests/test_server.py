"""UnifiedMLOpsMCPServer over the official MCP client, in-process (no subprocess)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mcp_server import __version__
from mcp_server.client import result_text, structured
from mcp_server.config import CAPABILITY_NAMES, Config
from mcp_server.server import CAPABILITY_CLASSES, UnifiedMLOpsMCPServer


@pytest.fixture
def server(local_config: Config) -> UnifiedMLOpsMCPServer:
    return UnifiedMLOpsMCPServer(local_config)


def test_server_holds_all_six_capabilities(server: UnifiedMLOpsMCPServer) -> None:
    assert [c.name for c in server.capabilities] == list(CAPABILITY_NAMES)
    assert len(CAPABILITY_CLASSES) == 6


def test_subset_is_held_but_not_routed(storage_root: Path) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_CAPABILITIES": "notification"})
    server = UnifiedMLOpsMCPServer(config)
    assert len(server.capabilities) == 6
    assert all(server.router.capability_of(n) == "notification" for n in server.router.tool_names)


async def test_client_sees_identity_and_instructions(server: UnifiedMLOpsMCPServer) -> None:
    async with Client(server.server, mode="legacy") as client:
        assert client.server_info is not None
        assert client.server_info.name == "unified-mlops"
        assert client.server_info.version == __version__
        assert client.instructions is not None and "load_dataset" in client.instructions
        assert client.server_capabilities.tools is not None


async def test_list_tools_over_protocol_matches_router(server: UnifiedMLOpsMCPServer) -> None:
    async with Client(server.server, mode="legacy") as client:
        listed = (await client.list_tools()).tools
    expected = server.router.list_tools()
    assert [t.name for t in listed] == [t.name for t in expected]
    for got, want in zip(listed, expected, strict=True):
        assert got.input_schema == want.input_schema
        assert got.output_schema == want.output_schema
        assert got.annotations == want.annotations


async def test_call_tool_over_protocol(server: UnifiedMLOpsMCPServer) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]})
    storage = server.router.storage
    storage.write_dataframe(frame, storage.resolve("data/small.csv"))
    async with Client(server.server, mode="legacy") as client:
        await client.list_tools()  # lets the client validate results against outputSchema
        result = await client.call_tool("load_dataset", {"s3_uri": "data/small.csv"})
        assert not result.is_error, result_text(result)
        out = structured(result)
        assert (out["rows"], out["columns"], out["missing_values"]) == (3, 2, {"a": 0, "b": 1})
        assert out["s3_uri"] == (storage.root / "data" / "small.csv").as_uri()

        error = await client.call_tool("load_dataset", {"s3_uri": "../../etc/passwd"})
        assert error.is_error
        assert "s3_uri" in result_text(error) and "'..'" in result_text(error)

        with pytest.raises(MCPError) as unknown:  # the spec's JSON-RPC error, not a tool result
            await client.call_tool("no_such_tool", {})
        assert unknown.value.code == INVALID_PARAMS and "Unknown tool 'no_such_tool'" in unknown.value.message


def test_every_tool_that_can_overwrite_an_output_says_destructive(server: UnifiedMLOpsMCPServer) -> None:
    outputs = ("output_s3_uri", "model_output_s3_uri", "output_prefix")
    for tool in server.router.list_tools():
        properties = tool.input_schema.get("properties", {})
        if any(name in properties for name in outputs):
            assert tool.annotations is not None and tool.annotations.destructive_hint is True, tool.name


def test_every_tool_names_a_function_that_imports(server: UnifiedMLOpsMCPServer) -> None:
    for name in server.router.tool_names:
        assert callable(server.router.spec(name).function()), name


def test_listing_tools_imports_nothing_heavy(storage_root: Path) -> None:
    # A fresh interpreter: this test process has imported pandas and friends long ago.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mcp_server.config import Config\n"
        "from mcp_server.server import UnifiedMLOpsMCPServer\n"
        f"server = UnifiedMLOpsMCPServer(Config.from_env({{'MLOPS_STORAGE_ROOT': {str(storage_root)!r}}}))\n"
        "assert server.router.list_tools()\n"
        "heavy = ('pandas', 'numpy', 'pyarrow', 'sklearn', 'scipy', 'torch', 'tensorflow', 'xgboost', 'boto3',"
        " 'matplotlib', 'gymnasium', 'jsonschema')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
