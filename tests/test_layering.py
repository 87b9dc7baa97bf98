"""The package's layering: `common/` holds only what capabilities share, so it never imports them."""

from __future__ import annotations

import ast
from pathlib import Path

COMMON = Path(__file__).resolve().parents[1] / "mcp_server" / "common"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, also inside functions and `if TYPE_CHECKING:` blocks."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_common_never_imports_capabilities() -> None:
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.startswith("mcp_server.capabilities"))
        for path in sorted(COMMON.glob("*.py"))
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_layering_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from mcp_server.capabilities import base\n")
    assert "mcp_server.capabilities.base" in imported_modules(sample)


def test_capabilities_never_import_each_others_code() -> None:
    capabilities = COMMON.parent / "capabilities"
    crossing = {}
    for package in sorted(p for p in capabilities.iterdir() if p.is_dir() and not p.name.startswith("_")):
        own = f"mcp_server.capabilities.{package.name}"
        for path in sorted(package.rglob("*.py")):
            others = sorted(
                m
                for m in imported_modules(path)
                if m.startswith("mcp_server.capabilities.") and not m.startswith((own, "mcp_server.capabilities.base"))
            )
            if others:
                crossing[str(path.relative_to(capabilities))] = others
    assert crossing == {}
