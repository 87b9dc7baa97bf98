"""Watchdog of the server's own Ray: when the server goes away, kill every process of its Ray.

Run by `ray_runtime` as `python ray_watchdog.py OWNER_TOKEN` with a pipe on stdin whose only
writer is the server. Reading it returns when the server exits or is killed (even SIGKILL: the
kernel closes the pipe). The head's GCS and raylet die with the server (`PR_SET_PDEATHSIG`), but
the raylet's agents (dashboard agent, runtime-env agent) and workers linger for a while. They are
found two ways: by `MLOPS_RAY_OWNER=<token>` in their environment (inherited from the server),
and, because Ray renames its processes with setproctitle, which overwrites what /proc shows of
their environment, by descent: while the server lives, a polling loop records the Ray children of
the server and everything below them (pid and start time, so a reused pid is never killed).
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
_RECORD_SECONDS = 0.5


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


def process_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[1]), fields[19]


def _is_ray(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"/ray/" in cmdline or cmdline.startswith(b"ray::")


def ray_descendants(root: int) -> dict[int, str]:
    """The server's Ray processes (children of `root` that are Ray binaries, with everything below
    them), with their start times; the server's other children are left alone."""
    parents: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := process_stat(int(entry.name))) is not None:
            parents.setdefault(info[0], []).append(int(entry.name))
            started[int(entry.name)] = info[1]
    found: dict[int, str] = {}
    todo = [pid for pid in parents.get(root, []) if _is_ray(pid)]
    while todo:
        pid = todo.pop()
        found[pid] = started[pid]
        todo.extend(parents.get(pid, []))
    return found


def sweep(token: str, recorded: dict[int, str]) -> None:
    """Kill the owned and recorded processes until none is left (more may appear while a raylet dies)."""
    for _ in range(_SWEEPS):
        pids = set(owned_processes(token))
        pids |= {pid for pid, start in recorded.items() if (info := process_stat(pid)) is not None and info[1] == start}
        pids.discard(os.getpid())
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
    server = os.getppid()
    recorded: dict[int, str] = {}
    pipe = sys.stdin.fileno()
    os.set_blocking(pipe, False)
    while True:
        try:
            if os.read(pipe, 4096) == b"":
                break  # EOF: the server is gone (or has shut its Ray down)
        except BlockingIOError:
            pass  # still open
        recorded.update(ray_descendants(server))
        time.sleep(_RECORD_SECONDS)
    sweep(argv[1], recorded)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
