"""A real `python -m mcp_server --transport http` child process on 127.0.0.1, for the HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

from mcp_server.client import server_env

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpServer:
    proc: subprocess.Popen[bytes]
    port: int
    errlog: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def stderr(self) -> str:
        return self.errlog.read_text()


def start_server(env: dict[str, str], errlog: Path, *args: str, port: int | None = None) -> subprocess.Popen[bytes]:
    full_env = server_env({"LOG_LEVEL": "INFO", **env})
    full_env["PYTHONPATH"] = os.environ.get("PYTHONPATH", str(REPO))
    with open(errlog, "ab") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcp_server",
                "--transport",
                "http",
                *args,
                *(["--port", str(port)] if port else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=full_env,
            cwd=REPO,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@contextmanager
def http_server(env: dict[str, str], tmp_path: Path, *args: str, name: str = "server") -> Iterator[HttpServer]:
    """Start the server, wait until `/healthz` answers, yield it; always stop it afterwards."""
    port = free_port()
    errlog = tmp_path / f"{name}-stderr.log"
    proc = start_server(env, errlog, *args, port=port)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{errlog.read_text()}")
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not answer /healthz:\n{errlog.read_text()}")
            time.sleep(0.2)
        yield HttpServer(proc, port, errlog)
    finally:
        stop(proc)
