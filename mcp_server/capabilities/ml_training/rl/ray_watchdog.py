"""Watchdog of the server's own Ray: when the server goes away, kill every process of its Ray.

Run by `ray_runtime` as `python ray_watchdog.py OWNER_TOKEN` with a pipe on stdin whose only
writer is the server. The read returns when the server exits or is killed (even SIGKILL: the
kernel closes the pipe). Every Ray process the server started carries `MLOPS_RAY_OWNER=<token>`
in its environment (inherited from the server), so the watchdog finds them in /proc and kills
them: the head's GCS and raylet already die with the server (`PR_SET_PDEATHSIG`), but the
raylet's agents (dashboard agent, runtime-env agent) and idle workers would otherwise linger.
Standard library only, so it starts in milliseconds; Linux only (elsewhere it just exits).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

OWNER_VARIABLE = "MLOPS_RAY_OWNER"
_SWEEPS = 20
_SWEEP_SECONDS = 0.25


def owned_processes(token: str) -> list[int]:
    needle = f"{OWNER_VARIABLE}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def sweep(token: str) -> None:
    """Kill the owned processes until none is left (new ones may appear while a raylet dies)."""
    for _ in range(_SWEEPS):
        pids = owned_processes(token)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        time.sleep(_SWEEP_SECONDS)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path("/proc").is_dir():
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the server must not stop us first
    sys.stdin.buffer.read()  # returns at EOF: the server is gone
    sweep(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
