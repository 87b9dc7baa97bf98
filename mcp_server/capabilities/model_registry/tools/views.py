"""How a stored version document is shown to clients (shared by every registry tool)."""

from __future__ import annotations

from typing import Any

from mcp_server.capabilities.model_registry.schemas import HistoryEntry, ModelVersion
from mcp_server.capabilities.model_registry.store import RegistryStore


def version_view(store: RegistryStore, doc: dict[str, Any], include_history: bool = False) -> ModelVersion:
    history = [HistoryEntry.model_validate(entry) for entry in doc.get("history") or []] if include_history else None
    return ModelVersion(
        model_name=doc["model_name"],
        version=int(doc["version"]),
        status=doc["status"],
        model_s3_uri=doc["model_s3_uri"],
        metrics=dict(doc.get("metrics") or {}),
        tags=dict(doc.get("tags") or {}),
        description=doc.get("description"),
        lineage=dict(doc.get("lineage") or {}),
        artifacts=dict(doc.get("artifacts") or {}),
        algorithm=doc.get("algorithm"),
        task_type=doc.get("task_type"),
        family=doc.get("family"),
        registered_by=doc.get("registered_by") or "unknown",
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at") or doc["created_at"],
        registry_uri=store.version_loc(doc["model_name"], int(doc["version"])).uri,
        history=history,
    )
