"""save_model: copy a verified bundle elsewhere, or export it to ONNX."""

from __future__ import annotations

import json
from typing import Any

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_training.schemas import SaveModelInput, SaveModelOutput
from mcp_server.capabilities.ml_training.tools.common import output_folder
from mcp_server.common.bundles import METADATA, Bundle, read_bundle
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.s3_utils import json_bytes

ONNX_INPUT = "input"


def save_model(ctx: ToolContext, params: SaveModelInput) -> ToolOutput:
    storage = ctx.storage
    if params.format == "native":
        dest = output_folder(storage, params.output_s3_uri, "output_s3_uri")
        bundle = read_bundle(storage, params.model_s3_uri, "model_s3_uri", load=False)  # verifies every hash
        if dest.uri.rstrip("/") == bundle.uri.rstrip("/"):
            raise InvalidInputError("output_s3_uri is the bundle itself", field="output_s3_uri")
        src = storage.resolve(bundle.uri, "model_s3_uri")
        for name in bundle.artifacts:
            ctx.check_cancelled()
            storage.copy(storage.join(src, name), storage.join(dest, name))
        # metadata.json last, as write_bundle does: an interrupted copy is never a bundle.
        digest = storage.write_bytes(storage.join(dest, METADATA), json_bytes(bundle.metadata), "application/json")
        data = SaveModelOutput(
            output_s3_uri=dest.uri,
            sha256=digest,
            format="native",
            family=bundle.family,
            algorithm=bundle.metadata.get("algorithm"),
            files=[*bundle.artifacts, METADATA],
            feature_names=bundle.feature_names,
        )
        return ToolOutput(
            data=data,
            artifacts=[Artifact(dest.uri, "model bundle", "inode/directory")],
            summary=f"Copied the bundle to {dest.uri}",
        )
    dest = storage.resolve_output(params.output_s3_uri, "output_s3_uri")
    if dest.suffix != ".onnx":
        raise InvalidInputError(
            "an ONNX export is a single .onnx file", field="output_s3_uri", hint="Use a name such as models/rf.onnx."
        )
    bundle = read_bundle(storage, params.model_s3_uri, "model_s3_uri")
    model_bytes = to_onnx(bundle)
    ctx.check_cancelled()
    digest = storage.write_bytes(dest, model_bytes, "application/octet-stream")
    note = "takes the processed feature columns (feature_names) as float32 input '" + ONNX_INPUT + "'"
    if bundle.preprocessor is not None:
        note += "; the bundle's preprocessing pipeline is not included: apply it before the ONNX model"
    if bundle.metadata.get("label_encoded"):
        note += "; predicted labels are indices into the bundle's classes"
    data = SaveModelOutput(
        output_s3_uri=dest.uri,
        sha256=digest,
        format="onnx",
        family=bundle.family,
        algorithm=bundle.metadata.get("algorithm"),
        files=[dest.name],
        input_name=ONNX_INPUT,
        feature_names=bundle.feature_names,
        note=note,
    )
    return ToolOutput(
        data=data,
        artifacts=[Artifact(dest.uri, dest.name, "application/onnx")],
        summary=f"Exported {bundle.metadata.get('algorithm')} to ONNX at {dest.uri}",
    )


def to_onnx(bundle: Bundle) -> bytes:
    """Serialised ONNX of the bundle's model (scikit-learn via skl2onnx, XGBoost via onnxmltools)."""
    n_features = len(bundle.feature_names)
    algorithm = bundle.metadata.get("algorithm") or bundle.family
    if bundle.family == "sklearn":
        onnx_model = _sklearn_onnx(bundle.model, n_features, algorithm)
    elif bundle.family == "xgboost":
        onnx_model = _xgboost_onnx(bundle.model, n_features, algorithm)
    else:
        raise InvalidInputError(
            f"ONNX export is not supported for {bundle.family} models ({algorithm})",
            field="format",
            hint="Use format=native; scikit-learn and XGBoost models can be exported to ONNX.",
        )
    # The bundle's contract (feature order, classes) travels inside the ONNX file.
    contract = {
        key: bundle.metadata.get(key)
        for key in ("algorithm", "task_type", "feature_names", "target_column", "classes", "label_encoded")
    }
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = "mlops", json.dumps(contract, default=str)
    return bytes(onnx_model.SerializeToString())


def _unsupported(algorithm: str, exc: Exception) -> InvalidInputError:
    return InvalidInputError(
        f"no ONNX converter exists for {algorithm} models ({type(exc).__name__})",
        field="format",
        hint="Use format=native for this model.",
    )


def _sklearn_onnx(model: Any, n_features: int, algorithm: str) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    try:
        return convert_sklearn(
            model, initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))], options=options
        )
    except Exception as exc:  # skl2onnx raises several types for estimators it has no converter for
        raise _unsupported(algorithm, exc) from None


def _xgboost_onnx(model: Any, n_features: int, algorithm: str) -> Any:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    try:
        return convert_xgboost(model, initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))])
    except Exception as exc:
        raise _unsupported(algorithm, exc) from None
