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

import io
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mcp_server.common.exceptions import BadFormatError, InvalidInputError, NotFoundError
from mcp_server.common.s3_utils import BUNDLE_MARKER, Location, S3Utils, json_bytes, parse_json, sha256_file

Family = Literal["sklearn", "xgboost", "torch", "keras", "policy"]
METADATA = BUNDLE_MARKER
BUNDLE_FORMAT_VERSION = 1
PREPROCESSOR_FILE = "preprocessor.skops"
_UNSAFE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".dill", ".cloudpickle", ".sav")
# What a .skops file may name beyond the types skops itself trusts, as exact `module.name`
# strings. Decided from the names alone: importing a module to look at it runs its top-level
# code (a file naming `numpy.f2py.__main__` would run f2py's command line inside the server),
# and a trusted *prefix* would admit functions such as `builtins.eval` or `numpy.save`.
_TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        # our own coercions, used inside fitted preprocessing pipelines
        "mcp_server.common.transformers.as_text",
        "mcp_server.common.transformers.as_number",
    }
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


# Libraries whose distribution may go by another name than the module (xgboost ships as
# xgboost-cpu on Linux): looked up by name only, never imported.
_DISTRIBUTIONS = {"xgboost": ("xgboost", "xgboost-cpu"), "tensorflow": ("tensorflow", "tensorflow-cpu")}


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the libraries a model depends on (recorded in the metadata), read
    from the installed distributions' metadata."""
    from importlib import metadata as importlib_metadata

    versions = {"python": platform.python_version()}
    for name in ("numpy", "pandas", "scikit-learn", "skops", *names):
        for distribution in _DISTRIBUTIONS.get(name, (name,)):
            try:
                versions[name] = importlib_metadata.version(distribution)
                break
            except importlib_metadata.PackageNotFoundError:
                continue
    return versions


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------- savers / loaders
def save_skops(obj: Any, path: Path, max_bytes: int | None = None) -> None:
    """Write `obj` as .skops; with `max_bytes`, stop (BundleTooLargeError) as soon as it is over."""
    import skops.io as sio

    if max_bytes is None:
        sio.dump(obj, path)
        return
    with _CappedFile(path, max_bytes) as handle:
        sio.dump(obj, handle)


class BundleTooLargeError(BadFormatError):
    pass


class _CappedFile(io.FileIO):
    """A file that refuses to grow past `limit` bytes: a huge model fails while it is being
    serialised, not after filling the disk."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(path, "wb")
        self.limit = limit

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self.limit:
            raise BundleTooLargeError(
                f"the model bundle would be over the MLOPS_MAX_BUNDLE_MB limit of {_mb(self.limit)}"
            )
        return super().write(data)


def _mb(size: int) -> str:
    return f"{size // 1024**2} MB" if size >= 1024**2 else f"{size} bytes"


def load_skops(path: Path) -> Any:
    """Load a .skops file whose every type skops or `_TRUSTED_TYPES` trusts; refuse anything else."""
    import zipfile

    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
        refused = [t for t in untrusted if t not in _TRUSTED_TYPES]
        if refused:
            raise BadFormatError(
                f"the model file contains types that are not allowed: {refused[:5]}",
                hint="Only scikit-learn, NumPy and SciPy objects written by this server are loaded.",
            )
        return sio.load(path, trusted=untrusted)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        # Not a skops archive (pickle bytes renamed), or a schema skops cannot read.
        raise BadFormatError(
            f"{path.name} is not a readable skops file ({type(exc).__name__})",
            hint="Retrain the model with this server; only skops archives it wrote are loaded.",
        ) from None


def _save_sklearn(model: Any, path: Path, metadata: dict[str, Any], max_bytes: int) -> dict[str, bytes]:
    save_skops(model, path, max_bytes)
    return {}


def _load_sklearn(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> Any:
    return load_skops(path)


def _save_xgboost(model: Any, path: Path, metadata: dict[str, Any], max_bytes: int) -> dict[str, bytes]:
    model.save_model(str(path))
    return {}


def _load_xgboost(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> Any:
    import xgboost as xgb

    estimator: Any = xgb.XGBClassifier() if metadata.get("task_type") == "classification" else xgb.XGBRegressor()
    try:
        estimator.load_model(str(path))
    except (xgb.core.XGBoostError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        # Pickle bytes or garbage under the model's name (the hash was re-recorded to match).
        raise BadFormatError(
            f"{path.name} is not a readable XGBoost model ({type(exc).__name__})",
            hint="Retrain the model with this server; only UBJSON models it wrote are loaded.",
        ) from None
    return estimator


# torch and Keras live in their own modules, imported only when such a bundle is written or read:
# reading a scikit-learn bundle never imports torch or TensorFlow.
def _save_torch(model: Any, path: Path, metadata: dict[str, Any], max_bytes: int) -> dict[str, bytes]:
    from mcp_server.common import torch_models

    return torch_models.save_torch_model(model, path, metadata)


def _load_torch(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> Any:
    from mcp_server.common import torch_models

    return torch_models.load_torch_model(path, metadata, extra_files)


def _save_keras(model: Any, path: Path, metadata: dict[str, Any], max_bytes: int) -> dict[str, bytes]:
    from mcp_server.common import keras_models

    return keras_models.save_keras_model(model, path, metadata)


def _load_keras(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> Any:
    from mcp_server.common import keras_models

    return keras_models.load_keras_model(path, metadata, extra_files)


def _save_policy(model: Any, path: Path, metadata: dict[str, Any], max_bytes: int) -> dict[str, bytes]:
    from mcp_server.common import policy_models

    return policy_models.save_policy(model, path, metadata)


def _load_policy(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> Any:
    from mcp_server.common import policy_models

    return policy_models.load_policy(path, metadata, extra_files)


@dataclass(frozen=True)
class Codec:
    """How one model family is stored: its file name, and a save and a load that run no code
    from the file. `save(model, path, metadata, max_bytes)` writes the model file and returns
    extra files (name -> bytes, e.g. `architecture.json`); `load(path, metadata, extra_files)`
    rebuilds the model."""

    model_file: str
    save: Callable[[Any, Path, dict[str, Any], int], dict[str, bytes]]
    load: Callable[[Path, dict[str, Any], dict[str, bytes]], Any]


CODECS: dict[str, Codec] = {
    "sklearn": Codec("model.skops", _save_sklearn, _load_sklearn),
    "xgboost": Codec("model.ubj", _save_xgboost, _load_xgboost),
    "torch": Codec("model.safetensors", _save_torch, _load_torch),
    "keras": Codec("model.keras", _save_keras, _load_keras),
    "policy": Codec("policy.safetensors", _save_policy, _load_policy),  # RL policies, with network.json
}
MODEL_FILES: dict[str, str] = {family: codec.model_file for family, codec in CODECS.items()}


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
    if family not in CODECS:
        raise InvalidInputError(f"unknown model family {family!r}")
    codec = CODECS[family]
    limit = storage.config.max_bundle_bytes
    with storage.scratch("mlops-bundle-") as folder:
        files: dict[str, Path] = {}
        model_path = folder / codec.model_file
        extras = dict(extra_files or {})
        try:
            extras.update(codec.save(model, model_path, metadata, limit))
            files[model_path.name] = model_path
            if preprocessor is not None:
                pre_path = folder / PREPROCESSOR_FILE
                save_skops(preprocessor, pre_path, limit - model_path.stat().st_size)
                files[PREPROCESSOR_FILE] = pre_path
            for name, data in extras.items():
                if name == METADATA or "/" in name or name.endswith(_UNSAFE_SUFFIXES):
                    raise InvalidInputError(f"refusing to write bundle file {name!r}")
                path = folder / name
                path.write_bytes(data)
                files[name] = path
            total = sum(p.stat().st_size for p in files.values())
            if total > limit:  # formats written by their own libraries are measured afterwards
                raise BundleTooLargeError(
                    f"the model bundle is {_mb(total)}, over the MLOPS_MAX_BUNDLE_MB limit of {_mb(limit)}"
                )
        except BundleTooLargeError as exc:
            raise BundleTooLargeError(
                exc.message + "; nothing was published",
                hint="Use a smaller model (fewer or shallower trees, fewer classes) or raise MLOPS_MAX_BUNDLE_MB.",
            ) from None
        artifacts = {name: sha256_file(path) for name, path in files.items()}
        final = {
            **metadata,
            "format_version": BUNDLE_FORMAT_VERSION,
            "family": family,
            "model_file": codec.model_file,
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
    with storage.scratch("mlops-bundle-") as tmp:
        local: dict[str, Path] = {}
        for name, expected in artifacts.items():
            src = storage.join(loc, name)
            if not storage.exists(src):
                raise BadFormatError(f"bundle file {name} is missing from {loc.uri}", field=field)
            path = tmp / name
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
        model_path = local[metadata["model_file"]]
        # Companion files (network descriptions, optimizer state) go to the codec as bytes.
        extras = {
            n: p.read_bytes()
            for n, p in local.items()
            if n.endswith((".json", ".safetensors")) and n not in (METADATA, metadata["model_file"])
        }
        bundle.model = CODECS[metadata["family"]].load(model_path, metadata, extras)
        if PREPROCESSOR_FILE in local:
            bundle.preprocessor = load_skops(local[PREPROCESSOR_FILE])
    return bundle


def describe(metadata: dict[str, Any]) -> str:
    """One line for humans: `random_forest (classification, 30 features) at s3://...`."""
    return (
        f"{metadata.get('algorithm')} ({metadata.get('task_type')}, "
        f"{len(metadata.get('feature_names') or [])} features)"
    )
