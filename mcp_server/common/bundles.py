"""Model bundles: the one place that writes and reads a trained model.

A bundle is a folder (`model_s3_uri`) holding the model in a format that cannot run code when
loaded, plus `metadata.json`:

    model.skops            scikit-learn estimators and pipelines (skops, trusted types checked)
    model.ubj              XGBoost (UBJSON)
    model.safetensors      torch weights, with `architecture.json` to rebuild the module
    model.keras            Keras 3 (safe_mode loading)
    policy.safetensors     RL policy weights, with `network.json` describing the network
    preprocessor.skops     optional fitted preprocessing pipeline applied to raw features
    metadata.json          algorithm, task, hyperparameters, features, target, classes, metrics,
                           training data URI and fingerprint, library versions, and the sha256
                           of every artifact (checked on every read)

`metadata.json` is written last, so a bundle whose writing was cancelled or crashed has no
metadata and is never read as a model. Pickle and joblib are never loaded.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mcp_server.common.exceptions import BadFormatError, InvalidInputError, NotFoundError
from mcp_server.common.s3_utils import Location, S3Utils, json_bytes, parse_json, sha256_file

Family = Literal["sklearn", "xgboost", "torch", "keras", "policy"]
METADATA = "metadata.json"
BUNDLE_FORMAT_VERSION = 1
MODEL_FILES: dict[str, str] = {
    "sklearn": "model.skops",
    "xgboost": "model.ubj",
    "torch": "model.safetensors",
    "keras": "model.keras",
    "policy": "policy.safetensors",  # RL policies (common/policy_models.py), with network.json
}
PREPROCESSOR_FILE = "preprocessor.skops"
_UNSAFE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".dill", ".cloudpickle", ".sav")
# Type prefixes skops may instantiate on load. Anything else in a .skops file is refused.
_TRUSTED_PREFIXES = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "builtins.",
    "collections.",
    "xgboost.",
    "mcp_server.common.transformers.",
)


@dataclass
class Bundle:
    """A bundle read from storage: verified metadata plus the loaded model (and preprocessor)."""

    uri: str
    metadata: dict[str, Any]
    model: Any = None
    preprocessor: Any = None
    artifacts: dict[str, str] = field(default_factory=dict)  # file name -> sha256

    @property
    def family(self) -> str:
        return str(self.metadata.get("family"))

    @property
    def task_type(self) -> str:
        return str(self.metadata.get("task_type"))

    @property
    def feature_names(self) -> list[str]:
        return list(self.metadata.get("feature_names") or [])


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the libraries a model depends on (recorded in the metadata)."""
    import importlib
    from importlib import metadata as importlib_metadata

    versions = {"python": platform.python_version()}
    for name in ("numpy", "pandas", "scikit-learn", "skops", *names):
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            # The distribution may be named differently from the module (xgboost ships as
            # xgboost-cpu on Linux): fall back to the module's own version.
            try:
                versions[name] = str(importlib.import_module(name).__version__)
            except (ImportError, AttributeError):
                continue
    return versions


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------- savers / loaders
def save_skops(obj: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(obj, path)


def load_skops(path: Path) -> Any:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES) or not _is_safe_reference(t)]
    if refused:
        raise BadFormatError(
            f"the model file contains types that are not allowed: {refused[:5]}",
            hint="Only scikit-learn, NumPy, SciPy and XGBoost objects are loaded.",
        )
    return sio.load(path, trusted=untrusted)


# Functions (not classes) a fitted pipeline may reference; our own coercions only.
_TRUSTED_FUNCTION_PREFIXES = ("mcp_server.common.transformers.",)


def _is_safe_reference(name: str) -> bool:
    """A class from a trusted package, or one of our own functions.

    A trusted *prefix* is not enough: `builtins.eval`, `numpy.save` or
    `sklearn.datasets.dump_svmlight_file` are functions a crafted `FunctionTransformer` would call
    on the data at transform time.
    """
    if name.startswith(_TRUSTED_FUNCTION_PREFIXES):
        return True
    import importlib

    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return isinstance(obj, type)
    return False


def _save_xgboost(model: Any, path: Path) -> None:
    model.save_model(str(path))


def _load_xgboost(path: Path, metadata: dict[str, Any]) -> Any:
    import xgboost as xgb

    estimator: Any = xgb.XGBClassifier() if metadata.get("task_type") == "classification" else xgb.XGBRegressor()
    estimator.load_model(str(path))
    return estimator


# Registered by the modules that define torch / Keras models (kept out of here so that reading a
# scikit-learn bundle never imports torch or TensorFlow).
Saver = Callable[[Any, Path, dict[str, Any]], dict[str, bytes]]
Loader = Callable[[Path, dict[str, Any], dict[str, bytes]], Any]
_EXTRA_SAVERS: dict[str, Saver] = {}
_EXTRA_LOADERS: dict[str, Loader] = {}


def register_family(family: str, saver: Saver, loader: Loader) -> None:
    """Let a framework module (torch, Keras) plug its safe save/load into bundles.

    `saver(model, path, metadata)` writes the model file at `path` and returns extra files
    (name -> bytes, e.g. `architecture.json`); `loader(path, metadata, extra_files)` rebuilds it.
    """
    _EXTRA_SAVERS[family] = saver
    _EXTRA_LOADERS[family] = loader


def _ensure_family_registered(family: str) -> None:
    if family in ("torch", "keras", "policy") and family not in _EXTRA_LOADERS:
        import importlib

        importlib.import_module(f"mcp_server.common.{family}_models")


# ---------------------------------------------------------------------------- write
def write_bundle(
    storage: S3Utils,
    dest: Location,
    model: Any,
    family: Family,
    metadata: dict[str, Any],
    preprocessor: Any = None,
    extra_files: dict[str, bytes] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Write a bundle under `dest` and return its final metadata (with artifact hashes).

    Everything is serialised to a temp folder first; artifacts are then published and
    `metadata.json` last, so an interrupted write never looks like a bundle.
    """
    if family not in MODEL_FILES:
        raise InvalidInputError(f"unknown model family {family!r}")
    _ensure_family_registered(family)
    with tempfile.TemporaryDirectory(prefix="mlops-bundle-") as tmp:
        folder = Path(tmp)
        files: dict[str, Path] = {}
        model_path = folder / MODEL_FILES[family]
        extras = dict(extra_files or {})
        if family == "sklearn":
            save_skops(model, model_path)
        elif family == "xgboost":
            _save_xgboost(model, model_path)
        else:
            extras.update(_EXTRA_SAVERS[family](model, model_path, metadata))
        files[model_path.name] = model_path
        if preprocessor is not None:
            pre_path = folder / PREPROCESSOR_FILE
            save_skops(preprocessor, pre_path)
            files[PREPROCESSOR_FILE] = pre_path
        for name, data in extras.items():
            if name == METADATA or "/" in name or name.endswith(_UNSAFE_SUFFIXES):
                raise InvalidInputError(f"refusing to write bundle file {name!r}")
            path = folder / name
            path.write_bytes(data)
            files[name] = path
        artifacts = {name: sha256_file(path) for name, path in files.items()}
        final = {
            **metadata,
            "format_version": BUNDLE_FORMAT_VERSION,
            "family": family,
            "model_file": MODEL_FILES[family],
            "has_preprocessor": preprocessor is not None,
            "artifacts": artifacts,
            "created_at": metadata.get("created_at") or now_iso(),
        }
        final.setdefault("library_versions", library_versions())
        if check_cancelled:
            check_cancelled()  # last chance to stop before anything becomes visible
        for name, path in files.items():
            storage.upload_file(path, storage.join(dest, name))
        storage.write_bytes(storage.join(dest, METADATA), json_bytes(final), "application/json")
    final["model_s3_uri"] = dest.uri
    return final


# ---------------------------------------------------------------------------- read
def bundle_location(storage: S3Utils, uri: str, field: str = "model_s3_uri") -> Location:
    """The bundle folder for `uri` (the folder itself, or its metadata.json)."""
    loc = storage.resolve(uri, field)
    if loc.name == METADATA:
        loc = storage.parent(loc)
    if loc.suffix in _UNSAFE_SUFFIXES:
        raise BadFormatError(
            f"{uri} is a pickle/joblib file, which this server never loads",
            field=field,
            hint="Retrain with this server or export the model to a bundle (skops, UBJSON, safetensors, .keras).",
        )
    return loc


def read_metadata(storage: S3Utils, uri: str, field: str = "model_s3_uri") -> tuple[Location, dict[str, Any]]:
    """Read and sanity-check `metadata.json` (artifact hashes are checked by `read_bundle`)."""
    loc = bundle_location(storage, uri, field)
    meta_loc = storage.join(loc, METADATA)
    if not storage.exists(meta_loc):
        raise NotFoundError(
            f"{loc.uri} is not a model bundle (no {METADATA})",
            field=field,
            hint="Pass the model_s3_uri a train_* tool returned.",
        )
    metadata = parse_json(storage.read_bytes(meta_loc, max_bytes=16 * 1024**2), meta_loc.uri)
    if not isinstance(metadata, dict) or metadata.get("family") not in MODEL_FILES:
        raise BadFormatError(f"{meta_loc.uri} is not valid bundle metadata", field=field)
    artifacts = metadata.get("artifacts")
    if not isinstance(artifacts, dict) or metadata.get("model_file") not in artifacts:
        raise BadFormatError(f"{meta_loc.uri} lists no model artifact", field=field)
    for name in artifacts:
        if not isinstance(name, str) or "/" in name or name.endswith(_UNSAFE_SUFFIXES) or name == METADATA:
            raise BadFormatError(f"bundle lists a refused artifact {name!r}", field=field)
    return loc, metadata


def read_bundle(storage: S3Utils, uri: str, field: str = "model_s3_uri", load: bool = True) -> Bundle:
    """Read a bundle, verifying every artifact's sha256; with `load`, also rebuild the model."""
    loc, metadata = read_metadata(storage, uri, field)
    artifacts: dict[str, str] = metadata["artifacts"]
    bundle = Bundle(uri=loc.uri, metadata=metadata, artifacts=artifacts)
    with tempfile.TemporaryDirectory(prefix="mlops-bundle-") as tmp:
        local: dict[str, Path] = {}
        for name, expected in artifacts.items():
            src = storage.join(loc, name)
            if not storage.exists(src):
                raise BadFormatError(f"bundle file {name} is missing from {loc.uri}", field=field)
            path = Path(tmp) / name
            with storage.local_file(src) as got:
                path.write_bytes(got.read_bytes())
            if sha256_file(path) != expected:
                raise BadFormatError(
                    f"bundle file {name} in {loc.uri} does not match its recorded sha256 (tampered or corrupted)",
                    field=field,
                    hint="Retrain or restore the bundle; it will not be loaded.",
                )
            local[name] = path
        if not load:
            return bundle
        family = metadata["family"]
        model_path = local[metadata["model_file"]]
        if family == "sklearn":
            bundle.model = load_skops(model_path)
        elif family == "xgboost":
            bundle.model = _load_xgboost(model_path, metadata)
        else:
            _ensure_family_registered(family)
            extras = {n: p.read_bytes() for n, p in local.items() if n.endswith(".json")}
            bundle.model = _EXTRA_LOADERS[family](model_path, metadata, extras)
        if PREPROCESSOR_FILE in local:
            bundle.preprocessor = load_skops(local[PREPROCESSOR_FILE])
    return bundle


def describe(metadata: dict[str, Any]) -> str:
    """One line for humans: `random_forest (classification, 30 features) at s3://...`."""
    return (
        f"{metadata.get('algorithm')} ({metadata.get('task_type')}, "
        f"{len(metadata.get('feature_names') or [])} features)"
    )
