"""register_model: record a verified model bundle as the next version of a named model."""

from __future__ import annotations

from typing import Any

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.model_registry.schemas import RegisterModelInput, RegisterModelOutput
from mcp_server.capabilities.model_registry.store import (
    RegistryStore,
    actor,
    metrics_from_bundle,
    validate_metrics,
    validate_model_name,
    validate_tags,
)
from mcp_server.common.bundles import read_bundle
from mcp_server.common.exceptions import NotFoundError

# Bundle metadata keys copied into the version's lineage (the trainers' names and older aliases).
_LINEAGE_KEYS = {
    "training_data_uri": "training_data_uri",
    "train_data_s3_uri": "training_data_uri",
    "validation_data_uri": "validation_data_uri",
    "validation_data_s3_uri": "validation_data_uri",
    "data_fingerprint": "data_fingerprint",
    "pipeline_s3_uri": "pipeline_s3_uri",
    "target_column": "target_column",
}


def _dataset_uri(ctx: ToolContext, uri: str) -> str:
    loc = ctx.storage.resolve(uri, "dataset_s3_uri")
    if not ctx.storage.exists(loc) and not ctx.storage.list_objects(loc):
        raise NotFoundError(
            f"{loc.uri} does not exist", field="dataset_s3_uri", hint="Pass the dataset the model was trained on."
        )
    return loc.uri


def register_model(ctx: ToolContext, params: RegisterModelInput) -> ToolOutput:
    name = validate_model_name(params.model_name)
    tags = validate_tags(params.tags)
    given_metrics = validate_metrics(params.metrics)
    # Verifies every artifact's sha256 (a tampered bundle is refused), refuses pickle files, and
    # loads the model the way load_model does: a bundle that cannot be loaded safely (a pickle
    # renamed model.skops, a type outside the allow-list) never becomes a version.
    bundle = read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri", load=True)
    metadata = bundle.metadata
    metrics = {**metrics_from_bundle(metadata.get("metrics")), **given_metrics}
    lineage: dict[str, Any] = {"model_s3_uri": bundle.uri}
    for key, name_in_lineage in _LINEAGE_KEYS.items():
        if metadata.get(key) is not None:
            lineage.setdefault(name_in_lineage, metadata[key])
    if params.dataset_s3_uri:
        lineage["dataset_s3_uri"] = _dataset_uri(ctx, params.dataset_s3_uri)
    elif lineage.get("training_data_uri"):
        lineage["dataset_s3_uri"] = lineage["training_data_uri"]
    record = {
        "model_s3_uri": bundle.uri,
        "metrics": metrics,
        "tags": tags,
        "description": params.description,
        "lineage": lineage,
        "artifacts": dict(bundle.artifacts),
        "algorithm": metadata.get("algorithm"),
        "task_type": metadata.get("task_type"),
        "family": metadata.get("family"),
        "bundle_created_at": metadata.get("created_at"),
    }
    ctx.check_cancelled()  # the last point where stopping leaves nothing behind
    doc, loc = RegistryStore(ctx.storage).register(name, record, actor(params.registered_by))
    data = RegisterModelOutput(
        model_name=name,
        version=doc["version"],
        status=doc["status"],
        model_s3_uri=bundle.uri,
        metrics=metrics,
        tags=tags,
        lineage=lineage,
        registered_by=doc["registered_by"],
        created_at=doc["created_at"],
        registry_uri=loc.uri,
    )
    shown = ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:4])
    return ToolOutput(
        data=data,
        artifacts=[Artifact(loc.uri, f"{name} version {data.version}", "application/json")],
        summary=f"Registered {name} version {data.version}" + (f" ({shown})" if shown else ""),
    )
