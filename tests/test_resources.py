"""ResourceRouter on its own: listing on a moto bucket, cursors, hidden prefixes, template
matching and declaration clashes (the stdio e2e test covers the rest through the client)."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from mcp_server.capabilities.base import BaseCapability, ResourceContent, ResourceTemplateSpec
from mcp_server.common.exceptions import ConfigError
from mcp_server.config import Config
from mcp_server.resources import PAGE_SIZE, ResourceRouter, expand
from mcp_server.server import UnifiedMLOpsMCPServer
from tests.conftest import BUCKET


def _put(client: Any, key: str, body: bytes = b"a,b\n1,2\n") -> None:
    client.put_object(Bucket=BUCKET, Key=key, Body=body)


@pytest.mark.anyio
async def test_lists_a_bucket_in_pages_and_hides_server_internal_keys(aws: Any, s3_config: Config) -> None:
    for i in range(PAGE_SIZE + 5):
        _put(aws, f"datasets/d{i:03d}.csv")
    for key in (".mlops-tmp/x.csv", "jobs/job-1.json", "github/deliveries/d.json", "pipelines/keys/k.json"):
        _put(aws, key, b"{}")
    _put(aws, "pipelines/job-1.json", b"{}")
    _put(aws, "registry/churn/index.json", b"{}")
    _put(aws, "registry/churn/versions/1.json", b"{}")
    _put(aws, "models/rf/metadata.json", b"{}")
    _put(aws, "models/rf/evaluations/e1.json", b"{}")
    _put(aws, "models/rf/plot.png", b"\x89PNG")
    resources = UnifiedMLOpsMCPServer(s3_config).resources

    first = await resources.list_resources(None)
    assert len(first.resources) == PAGE_SIZE and first.next_cursor
    second = await resources.list_resources(first.next_cursor)
    assert second.next_cursor is None
    uris = {r.uri for r in first.resources + second.resources}
    assert len(uris) == PAGE_SIZE + 5 + 6
    assert {"mlops://pipelines/job-1", "mlops://registry/churn", "mlops://registry/churn/versions/1"} <= uris
    assert "mlops://models/models/rf" in uris
    assert f"s3://{BUCKET}/models/rf/plot.png" in uris and f"s3://{BUCKET}/models/rf/evaluations/e1.json" in uris
    assert not any(k in u for u in uris for k in ("mlops-tmp", "jobs/", "deliveries", "keys/"))


@pytest.mark.anyio
async def test_a_forged_cursor_is_refused(local_config: Config) -> None:
    resources = UnifiedMLOpsMCPServer(local_config).resources
    for cursor in ("not-base64!", "eyJvIjogLTF9"):  # garbage; {"o": -1}
        with pytest.raises(MCPError, match="cursor"):
            await resources.list_resources(cursor)


@pytest.mark.anyio
async def test_reads_pngs_as_blobs_and_refuses_internal_keys(local_config: Config) -> None:
    root = local_config.storage_root
    (root / "plots").mkdir(parents=True)
    (root / "plots" / "p.png").write_bytes(b"\x89PNG\r\n")
    (root / "jobs").mkdir()
    (root / "jobs" / "j.json").write_text("{}")
    resources = UnifiedMLOpsMCPServer(local_config).resources
    result = await resources.read((root / "plots" / "p.png").resolve().as_uri())
    assert isinstance(result.contents[0], types.BlobResourceContents)
    assert result.contents[0].mime_type == "image/png"
    with pytest.raises(MCPError, match="server-internal"):
        await resources.read((root / "jobs" / "j.json").resolve().as_uri())


def test_templates_expand_and_a_clash_is_a_start_up_error(local_config: Config) -> None:
    assert expand("mlops://models/{path}", {"path": "models/a b"}) == "mlops://models/models/a%20b"

    async def read(services: Any, arguments: dict[str, str]) -> ResourceContent:
        return ResourceContent("{}", "application/json")

    class Twice(BaseCapability):
        name = "twice"

        def resource_templates(self) -> list[ResourceTemplateSpec]:
            return [ResourceTemplateSpec("mlops://x/{path}", "x", "x", None, read)]

    server = UnifiedMLOpsMCPServer(local_config)
    with pytest.raises(ConfigError, match="declared twice"):
        ResourceRouter([Twice(local_config), Twice(local_config)], server.router.services)
