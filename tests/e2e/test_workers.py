"""Worker processes over the real server: the spare starts after the first tools/list, and no
worker outlives a server that is killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import anyio
import pytest

from mcp_server.client import connect

pytestmark = pytest.mark.e2e


def processes_with(marker: str) -> dict[int, str]:
    """pid -> command line of every process whose environment carries `marker`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def parent_of(pid: int) -> int:
    # /proc/<pid>/stat: "pid (name) state ppid ..."; the name may hold spaces, so split after ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def test_no_worker_outlives_a_killed_server(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    marker = f"MLOPS_STORAGE_ROOT={root}"
    async with connect({"MLOPS_STORAGE_ROOT": str(root)}) as session:
        await session.list_tools()
        with anyio.fail_after(60):
            while len(processes_with(marker)) < 2:  # the server and its spare worker
                await anyio.sleep(0.1)
        procs = processes_with(marker)
        # The server is this test's own child (a process forking off has its parent's command line).
        server = [pid for pid in procs if parent_of(pid) == os.getpid()]
        assert len(server) == 1, procs
        os.kill(server[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while processes_with(marker) and time.monotonic() < deadline:
            await anyio.sleep(0.1)
        assert processes_with(marker) == {}
