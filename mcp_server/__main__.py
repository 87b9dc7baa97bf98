"""Entry point: `python -m mcp_server` serves MCP over stdio (`--transport http`: streamable HTTP).

Order matters: stdout is guarded before anything else is imported, so that neither our code nor
a native library can write a stray byte onto the JSON-RPC stream.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from typing import BinaryIO

_wire: BinaryIO | None = None  # the protocol's private copy of the original stdout


def _guard_stdout() -> BinaryIO | None:
    """Move the protocol pipe (fd 1) to a private descriptor and point fd 1 at stderr for good.

    Whatever writes to fd 1 afterwards (print, native libraries, a library's top-level code,
    output still buffered when the interpreter exits) lands on stderr; only the stdio transport
    writes to the private copy. Never pointed back: the transport's own restore at exit would
    let buffered bytes follow the last JSON-RPC message into the pipe.
    """
    global _wire
    if _wire is None:
        try:
            sys.stdout.flush()
            private = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
            os.dup2(2, 1)
            _wire = os.fdopen(private, "wb")
        except (OSError, ValueError):  # no usable stdout: nothing to protect
            _wire = None
    sys.stdout = sys.stderr
    return _wire


def main(argv: list[str] | None = None) -> int:
    wire = _guard_stdout()  # again here: the `mlops-mcp` console script calls main() directly
    parser = argparse.ArgumentParser(prog="python -m mcp_server", description="Unified MLOps MCP server (stdio).")
    parser.add_argument("--storage-root", help="local storage root (MLOPS_STORAGE_ROOT)")
    parser.add_argument("--bucket", help="S3 bucket for plain keys (MLOPS_S3_BUCKET)")
    parser.add_argument("--capabilities", help="comma-separated subset to enable (MLOPS_CAPABILITIES)")
    parser.add_argument("--read-only", action="store_true", help="list no tool that writes (MLOPS_READ_ONLY)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (LOG_LEVEL)")
    parser.add_argument("--list-tools", action="store_true", help="print the tool names to stderr and exit")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="stdio (default) or http")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP: address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP: port (default 8080)")
    parser.add_argument("--stateless", action="store_true", help="HTTP: no sessions (MLOPS_HTTP_STATELESS)")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    for flag, var in (
        ("storage_root", "MLOPS_STORAGE_ROOT"),
        ("bucket", "MLOPS_S3_BUCKET"),
        ("capabilities", "MLOPS_CAPABILITIES"),
        ("log_level", "LOG_LEVEL"),
    ):
        if getattr(args, flag):
            env[var] = getattr(args, flag)
    if args.read_only:
        env["MLOPS_READ_ONLY"] = "true"
    if args.stateless:
        env["MLOPS_HTTP_STATELESS"] = "true"

    from mcp_server.common.exceptions import MLOpsError
    from mcp_server.common.logger import configure_logging, get_logger
    from mcp_server.config import Config

    try:
        config = Config.from_env(env)
    except MLOpsError as exc:
        sys.stderr.write(f"mcp_server: configuration error: {exc}\n")
        return 2
    configure_logging(config.log_level)
    os.environ.setdefault("RLLIB_TEST_NO_TF_IMPORT", "1")

    import anyio

    from mcp_server.server import UnifiedMLOpsMCPServer

    try:
        server = UnifiedMLOpsMCPServer(config)
    except MLOpsError as exc:
        sys.stderr.write(f"mcp_server: start-up error: {exc}\n")
        return 2
    if args.list_tools:
        sys.stderr.write("\n".join(server.router.tool_names) + "\n")
        return 0
    swept = server.router.storage.sweep_scratch()  # temp files of a server that was killed mid-write
    if args.transport == "http":
        from mcp_server.http_app import run_http  # HTTP-only imports stay off the stdio start-up path

        return run_http(server, args.host, args.port)
    get_logger("mcp_server").info(
        "starting",
        extra={"fields": {"tools": len(server.router.tool_names), "storage": config.default_location, "swept": swept}},
    )
    try:
        anyio.run(server.run_stdio, wire)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    _guard_stdout()
    sys.exit(main())
