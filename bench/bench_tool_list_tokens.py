"""Benchmark: how much of a model's context `tools/list` takes, in cl100k tokens per tool.

    .venv/bin/python bench/bench_tool_list_tokens.py [--top 10] [--workflow]

Spawns the server in its default configuration (all capabilities, not read-only) under the
official TypeScript SDK client and counts the tools/list response with js-tiktoken's cl100k
(node project in tests/e2e/ts; `bash .ci/setup` installs it). Prints the figure against the
target and the baseline measured before the lean schemas, the heaviest tools, and any schema
that strict ajv refuses. Exits 1 when the target is missed. --workflow also runs the workflow of
tests/e2e/test_ts_client.py (load ... register, on breast-cancer data) and prints each result's size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.test_ts_client import WORKFLOW, write_dataset  # noqa: E402
from tests.e2e.ts_client import run_ts_client  # noqa: E402

TARGET = 350  # tokens per tool, averaged over the whole response
BASELINE = (31_217, 31, 133_825)  # tokens, tools, characters at commit 49096ed (titles, full schemas)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=10, help="how many of the heaviest tools to list")
    parser.add_argument("--workflow", action="store_true", help="also print the workflow's result sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as root:
        listed = run_ts_client("list", {"MLOPS_STORAGE_ROOT": root})
        if args.workflow:
            write_dataset(Path(root))
            plan = {"calls": [{"name": name, "arguments": arguments} for name, arguments in WORKFLOW]}
            results = run_ts_client("calls", {"MLOPS_STORAGE_ROOT": root}, plan)["results"]
            print(f"{'workflow result':24} {'text tokens':>12} {'whole result':>13}  (images aside)")
            for got in results:
                print(f"  {got['name']:22} {got.get('textTokens', 0):>12,} {got.get('tokens', 0):>13,}")
    per_tool = listed["tokens"] / listed["tools"]
    base_tokens, base_tools, base_chars = BASELINE
    rows = [
        ("", "tools", "characters", "cl100k tokens", "per tool"),
        ("baseline (49096ed)", base_tools, f"{base_chars:,}", f"{base_tokens:,}", f"{base_tokens / base_tools:.0f}"),
        ("now", listed["tools"], f"{listed['characters']:,}", f"{listed['tokens']:,}", f"{per_tool:.0f}"),
    ]
    for label, *cells in rows:
        print(f"{label:20} " + " ".join(f"{cell:>14}" for cell in cells))
    ok = per_tool <= TARGET and not listed["strict_problems"]
    print(f"target <= {TARGET} tokens per tool: {'PASS' if per_tool <= TARGET else 'FAIL'}")
    print(f"heaviest {args.top}:")
    for name, tokens in sorted(listed["per_tool"].items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {name:28} {tokens:>5}")
    for problem in listed["strict_problems"]:
        print(f"strict ajv refuses {problem}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
