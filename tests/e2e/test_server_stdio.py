"""The real server as a child process over stdio: the official client, and raw JSON-RPC lines
to prove stdout carries nothing but the protocol."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pytest

from mcp_server.client import connect, result_text, server_env, structured

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
HINTS = ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint")


def write_datasets(root: Path) -> None:
    pd.DataFrame({"x": [1.0, 2.0, None], "y": ["a", "b", "c"]}).to_csv(root / "good.csv", index=False)
    (root / "ragged.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    (root / "noisy.csv").write_text("a,b\n1,2\n3,4,5,6\n")


async def test_client_lists_tools_and_loads_dataset(storage_root: Path, tmp_path: Path) -> None:
    write_datasets(storage_root)
    errlog = tmp_path / "stderr.log"
    with open(errlog, "w") as err:
        async with connect({"MLOPS_STORAGE_ROOT": str(storage_root)}, errlog=err) as session:
            tools = (await session.list_tools()).tools
            assert "load_dataset" in {t.name for t in tools}
            for tool in tools:
                assert tool.description, tool.name
                assert tool.input_schema.get("type") == "object", tool.name
                assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
                assert tool.annotations is not None, tool.name
                for hint in HINTS:
                    assert isinstance(getattr(tool.annotations, hint), bool), (tool.name, hint)

            result = await session.call_tool("load_dataset", {"s3_uri": "good.csv", "preview_rows": 2})
            assert not result.is_error, result_text(result)
            out = structured(result)
            assert (out["rows"], out["columns"], out["column_names"]) == (3, 2, ["x", "y"])
            assert out["missing_values"] == {"x": 1, "y": 0}
            assert out["preview"] == [{"x": 1.0, "y": "a"}, {"x": 2.0, "y": "b"}]

            bad = await session.call_tool("load_dataset", {"s3_uri": "ragged.csv"})
            assert bad.is_error and "cannot read" in result_text(bad)
            outside = await session.call_tool("load_dataset", {"s3_uri": "file:///etc/passwd"})
            assert outside.is_error and "outside the storage root" in result_text(outside)
    for line in errlog.read_text().splitlines():
        json.loads(line)  # the server logs nothing but JSON lines on stderr


class RawServer:
    """`python -m mcp_server` driven by hand: one JSON-RPC message per line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
            bufsize=1,
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: IO[str], sink: list[str], protocol: bool) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))
            if protocol:
                with contextlib.suppress(ValueError):  # recorded in sink; the test fails on it
                    self._messages.put(json.loads(line))

    def send(self, message: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        self.proc.stdin.flush()

    def request(self, id_: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": id_, "method": method, **({"params": params} if params else {})})
        while True:
            message = self._messages.get(timeout=60)
            if message.get("id") == id_:
                return message

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for thread in self._threads:
            thread.join(timeout=10)
        return code


NOISE = """
    import os, sys

    def _noisy_library(event, args):
        # Stands in for a library that prints while reading a file: Python-level and native writes.
        if event == "open" and args and str(args[0]).endswith("noisy.csv"):
            print("PYTHON-LEVEL NOISE ON STDOUT")
            sys.stdout.flush()
            os.write(1, b"NATIVE NOISE ON FD 1\\n")

    sys.addaudithook(_noisy_library)

    import atexit

    @atexit.register
    def _noise_at_exit():
        # Stands in for output a library leaves buffered or writes while the interpreter exits
        # (also in the server's worker processes, which import this file too).
        try:
            sys.__stdout__.write("BUFFERED NOISE AT EXIT\\n")
            os.write(1, b"NATIVE NOISE AT EXIT\\n")
        except (OSError, ValueError, AttributeError):
            pass
"""


def test_every_stdout_line_is_json_rpc(storage_root: Path, tmp_path: Path) -> None:
    write_datasets(storage_root)
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(textwrap.dedent(NOISE))
    env = {
        **server_env({"MLOPS_STORAGE_ROOT": str(storage_root), "PYTHONPATH": str(hook_dir)}),
        "PATH": os.environ.get("PATH", ""),
    }
    server = RawServer(env)
    try:
        init = server.request(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        )
        assert init["result"]["serverInfo"]["name"] == "unified-mlops"
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = server.request(2, "tools/list")["result"]["tools"]
        assert "load_dataset" in {t["name"] for t in tools}
        noisy = server.request(3, "tools/call", {"name": "load_dataset", "arguments": {"s3_uri": "noisy.csv"}})
        assert noisy["result"]["isError"] is True
        assert "cannot read" in noisy["result"]["content"][0]["text"]
        server.send("this line is not JSON-RPC")
        good = server.request(4, "tools/call", {"name": "load_dataset", "arguments": {"s3_uri": "good.csv"}})
        assert good["result"]["isError"] is False
        assert good["result"]["structuredContent"]["rows"] == 3
        unknown = server.request(5, "tools/call", {"name": "nope", "arguments": {}})
        assert unknown["error"]["code"] == -32602 and "Unknown tool 'nope'" in unknown["error"]["message"]
    finally:
        code = server.close()
    assert code == 0
    assert server.stdout_lines, "the server answered nothing"
    for line in server.stdout_lines:
        message = json.loads(line)  # a stray byte on stdout would break this
        assert message["jsonrpc"] == "2.0"
    # The noise was real, and went to stderr instead of the protocol stream.
    noise = {"PYTHON-LEVEL NOISE ON STDOUT", "NATIVE NOISE ON FD 1", "BUFFERED NOISE AT EXIT", "NATIVE NOISE AT EXIT"}
    assert noise <= set(server.stderr_lines)
    logs = [json.loads(line) for line in server.stderr_lines if line not in noise]
    assert logs and all({"ts", "level", "logger", "msg"} <= set(entry) for entry in logs)
    assert any(entry["msg"] == "tool call" and entry.get("tool") == "load_dataset" for entry in logs)


def test_attack_crafted_model_file_neither_kills_the_server_nor_writes_to_stdout(storage_root: Path) -> None:
    from mcp_server.common.s3_utils import S3Utils
    from mcp_server.config import Config
    from tests.crafted import plant, skops_naming
    from tests.model_registry.helpers import bundle_writer, train_tiny_models

    storage = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))
    bundle_writer(storage, train_tiny_models())("models/f2py")
    # Importing this module runs f2py's command line: usage text on stdout, then sys.exit.
    plant(storage_root / "models" / "f2py", "model.skops", skops_naming("numpy.f2py.__main__", "main"))
    env = {**server_env({"MLOPS_STORAGE_ROOT": str(storage_root)}), "PATH": os.environ.get("PATH", "")}
    server = RawServer(env)
    try:
        server.request(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        )
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        for request_id, tool in ((2, "load_model"), (3, "register_model")):
            arguments = (
                {"model_s3_uri": "models/f2py", "model_name": "m"}
                if tool == "register_model"
                else {"model_s3_uri": "models/f2py"}
            )
            answer = server.request(request_id, "tools/call", {"name": tool, "arguments": arguments})
            assert answer["result"]["isError"] is True
            assert "not allowed" in answer["result"]["content"][0]["text"]
        assert server.request(4, "tools/list")["result"]["tools"]  # still serving
    finally:
        code = server.close()
    assert code == 0
    for line in server.stdout_lines:
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert not (storage_root / "registry").exists()


def test_ctrl_c_still_stops_the_server(storage_root: Path) -> None:
    import signal

    env = {**server_env({"MLOPS_STORAGE_ROOT": str(storage_root)}), "PATH": os.environ.get("PATH", "")}
    server = RawServer(env)
    try:
        server.request(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        )
        server.proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        # The stdin reader thread only notices once its read returns: a terminal's Ctrl-C also
        # ends the client, whose pipe then closes.
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        code = server.proc.wait(timeout=30)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert code in (130, -signal.SIGINT)  # the router's guard does not swallow a real Ctrl-C
    for line in server.stdout_lines:
        assert json.loads(line)["jsonrpc"] == "2.0"


def test_start_up_sweeps_what_a_killed_server_left_in_the_scratch_area(storage_root: Path) -> None:
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = storage_root / ".mlops-tmp" / f"{socket.gethostname()}-{dead.pid}" / "mlops-bundle-abc"
    leftover.mkdir(parents=True)
    (leftover / "model.skops").write_bytes(b"\0" * 4096)  # a publish cut short by kill -9
    env = {**server_env({"MLOPS_STORAGE_ROOT": str(storage_root)}), "PATH": os.environ.get("PATH", "")}
    server = RawServer(env)
    try:
        server.request(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        )
    finally:
        assert server.close() == 0
    assert not leftover.parent.exists()
