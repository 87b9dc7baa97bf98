"""Model bundles: safe formats round-trip, hashes are checked, pickles and unsafe skops refused."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mcp_server.common.bundles import (
    METADATA,
    load_skops,
    read_bundle,
    read_metadata,
    save_skops,
    write_bundle,
)
from mcp_server.common.exceptions import BadFormatError, CancelledError, InvalidInputError, NotFoundError
from mcp_server.common.s3_utils import S3Utils, sha256_bytes
from mcp_server.config import Config


@pytest.fixture
def storage(any_config: Config) -> S3Utils:
    return S3Utils(any_config)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


def fitted(iris: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


META = {"algorithm": "logistic_regression", "task_type": "classification", "feature_names": ["a", "b", "c", "d"]}


def test_sklearn_bundle_round_trip_with_verified_hashes(storage: S3Utils, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris
    model = fitted(iris)
    dest = storage.resolve("models/lr")
    meta = write_bundle(storage, dest, model, "sklearn", META, preprocessor=StandardScaler().fit(X))
    assert meta["model_s3_uri"] == dest.uri
    assert set(meta["artifacts"]) == {"model.skops", "preprocessor.skops"}
    for name, digest in meta["artifacts"].items():
        assert sha256_bytes(storage.read_bytes(storage.join(dest, name))) == digest
    bundle = read_bundle(storage, dest.uri)
    np.testing.assert_array_equal(bundle.model.predict(X), model.predict(X))
    np.testing.assert_allclose(bundle.preprocessor.transform(X), StandardScaler().fit(X).transform(X))
    assert bundle.family == "sklearn" and bundle.task_type == "classification"
    assert bundle.feature_names == ["a", "b", "c", "d"]
    assert bundle.metadata["library_versions"]["scikit-learn"]


def test_bundle_read_through_its_metadata_uri(storage: S3Utils, iris: tuple[np.ndarray, np.ndarray]) -> None:
    dest = storage.resolve("models/by-meta")
    write_bundle(storage, dest, fitted(iris), "sklearn", META)
    loc, metadata = read_metadata(storage, storage.join(dest, METADATA).uri)
    assert loc.uri == dest.uri and metadata["family"] == "sklearn"


def test_xgboost_bundle_round_trip(storage: S3Utils, iris: tuple[np.ndarray, np.ndarray]) -> None:
    import xgboost as xgb

    X, y = iris
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    dest = storage.resolve("models/xgb")
    write_bundle(storage, dest, model, "xgboost", {**META, "algorithm": "xgboost"})
    bundle = read_bundle(storage, dest.uri)
    np.testing.assert_array_equal(bundle.model.predict(X), model.predict(X))


def test_tampered_artifact_is_refused(storage: S3Utils, iris: tuple[np.ndarray, np.ndarray]) -> None:
    dest = storage.resolve("models/tampered")
    write_bundle(storage, dest, fitted(iris), "sklearn", META)
    model_loc = storage.join(dest, "model.skops")
    storage.write_bytes(model_loc, storage.read_bytes(model_loc) + b"\x00")
    with pytest.raises(BadFormatError, match=r"does not match its recorded sha256 \(tampered or corrupted\)"):
        read_bundle(storage, dest.uri, load=False)


def test_missing_artifact_is_refused(storage: S3Utils, iris: tuple[np.ndarray, np.ndarray]) -> None:
    dest = storage.resolve("models/partial")
    write_bundle(storage, dest, fitted(iris), "sklearn", META)
    storage.delete(storage.join(dest, "model.skops"))
    with pytest.raises(BadFormatError, match=r"model\.skops is missing"):
        read_bundle(storage, dest.uri)


def test_folder_without_metadata_is_not_a_bundle(storage: S3Utils) -> None:
    storage.write_bytes(storage.resolve("models/empty/model.skops"), b"whatever")
    with pytest.raises(NotFoundError, match="is not a model bundle") as err:
        read_bundle(storage, "models/empty")
    assert err.value.field == "model_s3_uri"


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "weights.pt", "x.pickle"])
def test_pickle_like_uris_are_never_loaded(storage: S3Utils, name: str) -> None:
    storage.write_bytes(storage.resolve(f"models/{name}"), b"\x80\x04K\x01.")
    with pytest.raises(BadFormatError, match="never loads"):
        read_bundle(storage, f"models/{name}")


@pytest.mark.parametrize("artifact", ["model.pkl", "../escape.skops", METADATA])
def test_metadata_listing_unsafe_artifact_is_refused(storage: S3Utils, artifact: str) -> None:
    metadata = {"family": "sklearn", "model_file": "model.skops", "artifacts": {"model.skops": "0", artifact: "0"}}
    storage.write_bytes(storage.resolve(f"models/evil/{METADATA}"), json.dumps(metadata).encode())
    with pytest.raises(BadFormatError, match="refused artifact"):
        read_bundle(storage, "models/evil")


def test_invalid_metadata_is_refused(storage: S3Utils) -> None:
    storage.write_bytes(storage.resolve(f"models/junk/{METADATA}"), b"{not json")
    with pytest.raises(BadFormatError, match="not valid JSON"):
        read_bundle(storage, "models/junk")
    storage.write_bytes(storage.resolve(f"models/junk2/{METADATA}"), b'{"family": "pickle"}')
    with pytest.raises(BadFormatError, match="not valid bundle metadata"):
        read_bundle(storage, "models/junk2")


def test_skops_calling_a_builtin_function_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.skops"
    save_skops(Pipeline([("run", FunctionTransformer(func=builtins.eval))]), path)
    with pytest.raises(BadFormatError, match=r"not allowed: \['builtins.eval'\]"):
        load_skops(path)


def test_skops_referencing_a_library_function_is_refused(tmp_path: Path) -> None:
    from sklearn.datasets import dump_svmlight_file

    path = tmp_path / "writer.skops"
    save_skops(FunctionTransformer(func=dump_svmlight_file, kw_args={"f": "/tmp/owned"}), path)
    with pytest.raises(BadFormatError, match="dump_svmlight_file"):
        load_skops(path)


class Sneaky(BaseEstimator, TransformerMixin):
    def fit(self, X: Any, y: Any = None) -> Sneaky:
        return self

    def transform(self, X: Any) -> Any:
        return X


def test_skops_with_unknown_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custom.skops"
    save_skops(Pipeline([("s", Sneaky())]), path)
    with pytest.raises(BadFormatError, match="Sneaky"):
        load_skops(path)


def test_skops_with_standard_pipeline_and_ufunc_loads(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris
    pipe = Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler())]).fit(X)
    path = tmp_path / "ok.skops"
    save_skops(pipe, path)
    np.testing.assert_allclose(load_skops(path).transform(X), pipe.transform(X))


def test_cancelled_write_publishes_nothing(storage: S3Utils, iris: tuple[np.ndarray, np.ndarray]) -> None:
    dest = storage.resolve("models/cancelled")

    def cancelled() -> None:
        raise CancelledError("the call was cancelled; nothing was written")

    with pytest.raises(CancelledError):
        write_bundle(storage, dest, fitted(iris), "sklearn", META, check_cancelled=cancelled)
    assert storage.list_objects(dest) == []


@pytest.mark.parametrize("name", [METADATA, "sub/file.json", "state.pkl"])
def test_refused_extra_file_names_write_nothing(
    storage: S3Utils, iris: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    dest = storage.resolve("models/extras")
    with pytest.raises(InvalidInputError, match="refusing to write bundle file"):
        write_bundle(storage, dest, fitted(iris), "sklearn", META, extra_files={name: b"{}"})
    assert storage.list_objects(dest) == []


def test_unknown_family_is_refused(storage: S3Utils) -> None:
    with pytest.raises(InvalidInputError, match="unknown model family"):
        write_bundle(storage, storage.resolve("models/x"), object(), "pickle", META)  # type: ignore[arg-type]


def test_bundle_writing_keeps_its_temporary_files_in_the_scratch_area(
    storage: S3Utils, iris: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    sources: list[Path] = []
    upload = storage.upload_file

    def spy(src: Path, loc: Any, content_type: str | None = None) -> str:
        sources.append(src)
        return upload(src, loc, content_type)

    monkeypatch.setattr(storage, "upload_file", spy)
    model = DecisionTreeClassifier(max_depth=2).fit(*iris)
    write_bundle(storage, storage.resolve("models/t"), model, "sklearn", {"task_type": "classification"})
    assert sources and all(p.is_relative_to(storage.root / ".mlops-tmp") for p in sources)
    if storage.config.s3_bucket is None:  # also in S3 mode the scratch area is under the local root
        assert not any(p.name.endswith(".tmp") for p in (storage.root / "models" / "t").iterdir())
