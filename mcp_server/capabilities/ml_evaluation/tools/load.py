"""load_model: read a bundle (hashes verified, no pickle) and describe it."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation.engine import known_classes
from mcp_server.capabilities.ml_evaluation.schemas import Lineage, LoadModelInput, LoadModelOutput
from mcp_server.common import bundles
from mcp_server.common.history import capped_history


def load_model(ctx: ToolContext, params: LoadModelInput) -> ToolOutput:
    # Loading the model too (not only hashing) proves the artifacts deserialise with trusted types.
    bundle = bundles.read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri", load=True)
    meta = bundle.metadata
    folder = ctx.storage.resolve(bundle.uri, "model_s3_uri")
    evaluations = [loc.uri for loc in ctx.storage.list_objects(ctx.storage.join(folder, "evaluations"))]
    data = LoadModelOutput(
        model_s3_uri=bundle.uri,
        algorithm=meta.get("algorithm"),
        task_type=meta.get("task_type"),
        family=bundle.family,
        model_class=type(bundle.model).__name__,
        feature_names=bundle.feature_names,
        raw_feature_columns=list(meta.get("raw_feature_columns") or []),
        has_preprocessor=bundle.preprocessor is not None,
        target_column=meta.get("target_column"),
        classes=(known_classes(bundle) or None) if meta.get("task_type") == "classification" else None,
        hyperparameters=dict(meta.get("hyperparameters") or {}),
        metrics=dict(meta.get("metrics") or {}),
        lineage=Lineage(
            training_data_uri=meta.get("training_data_uri"),
            data_fingerprint=meta.get("data_fingerprint"),
            created_at=meta.get("created_at"),
            library_versions={str(k): str(v) for k, v in (meta.get("library_versions") or {}).items()},
        ),
        sha256_verified=True,
        sha256=dict(bundle.artifacts),
        evaluations=evaluations,
        # The stored metadata.json keeps the full history; the result carries a summary of it.
        metadata={**meta, **capped_history(meta.get("history"), ctx.storage.join(folder, bundles.METADATA).uri)},
    )
    return ToolOutput(data=data, summary=f"Loaded {bundles.describe(meta)} from {bundle.uri}; sha256 verified")
