"""docs/tools.md is the repository's tool reference: generated from the specs, never stale."""

from __future__ import annotations

from pathlib import Path

from mcp_server.config import Config
from mcp_server.server import UnifiedMLOpsMCPServer
from mcp_server.tool_docs import REGENERATE, render

DOC = Path(__file__).resolve().parents[1] / "docs" / "tools.md"


def test_tool_reference_is_up_to_date() -> None:
    assert DOC.exists(), f"docs/tools.md is missing; create it with: {REGENERATE}"
    assert DOC.read_text() == render(), f"docs/tools.md is out of date; regenerate it with: {REGENERATE}"


def test_tool_reference_covers_every_tool_and_its_inputs(storage_root: Path) -> None:
    text = render()
    router = UnifiedMLOpsMCPServer(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})).router
    for tool in router.list_tools():
        assert f"\n### {tool.name}\n" in text, tool.name
        for field in tool.input_schema.get("properties", {}):
            assert f"| `{field}` |" in text, f"{tool.name}.{field}"


def test_readme_links_the_reference_not_a_file_outside_the_repository() -> None:
    readme = (DOC.parents[1] / "README.md").read_text()
    assert "docs/tools.md" in readme and "../shared/" not in readme
