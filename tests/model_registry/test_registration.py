from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_server.capabilities.model_registry.store import RegistryStore, metrics_from_bundle
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.model_registry.helpers import MakeBundle


async def test_register_records_validation_metrics_lineage_and_who(
    any_router: ToolRouter, make_bundle: MakeBundle, tiny_models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    uri = make_bundle("models/iris-v1")
    out = await call(
        any_router,
        "register_model",
        model_name="iris",
        model_s3_uri=uri,
        tags={"team": "ml", "stage": "exp"},
        description="first try",
    )
    _, train_accuracy, val_accuracy = tiny_models["logreg"]
    assert out["model_name"] == "iris" and out["version"] == 1 and out["status"] == "none"
    # Validation scores are the metrics; training scores are kept under a train_ prefix.
    assert out["metrics"] == {
        "accuracy": pytest.approx(val_accuracy),
        "train_accuracy": pytest.approx(train_accuracy),
        "train_f1": pytest.approx(train_accuracy),
    }
    assert out["tags"] == {"team": "ml", "stage": "exp"}
    assert out["registered_by"] == "alice"
    assert out["lineage"]["data_fingerprint"] == "sha256:feedbeef"
    assert out["lineage"]["dataset_s3_uri"] == "data/iris_train.parquet"
    assert out["model_s3_uri"] == uri

    stored = json.loads(any_router.storage.read_bytes(any_router.storage.resolve("registry/iris/versions/1.json")))
    assert stored["status"] == "none" and stored["description"] == "first try"
    assert set(stored["artifacts"]) == {"model.skops"}
    assert stored["history"][0]["to"] == "none" and stored["history"][0]["by"] == "alice"
    index = json.loads(any_router.storage.read_bytes(any_router.storage.resolve("registry/iris/index.json")))
    assert index["latest_version"] == 1 and index["production_version"] is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"train": {"accuracy": 0.9}}, {"accuracy": 0.9}),
        ({"inertia": 12.5, "silhouette": 0.4}, {"inertia": 12.5, "silhouette": 0.4}),
        ({"episode_return_mean": [10, 50, 200.0]}, {"episode_return_mean": 200.0}),
        ({"validation": {"r2": 0.8, "note": "x", "flag": True, "bad": float("nan")}}, {"r2": 0.8}),
        (None, {}),
    ],
)
def test_bundle_metrics_are_flattened(raw: Any, expected: dict[str, float]) -> None:
    assert metrics_from_bundle(raw) == expected


async def test_register_given_metrics_override_bundle_metrics(
    router: ToolRouter, make_local_bundle: MakeBundle
) -> None:
    uri = make_local_bundle("models/a")
    out = await call(
        router, "register_model", model_name="m", model_s3_uri=uri, metrics={"accuracy": 0.5, "latency_ms": 12}
    )
    assert out["metrics"]["accuracy"] == 0.5
    assert out["metrics"]["latency_ms"] == 12.0


async def test_register_numbers_versions_in_sequence_per_model(
    router: ToolRouter, make_local_bundle: MakeBundle
) -> None:
    uri = make_local_bundle("models/a")
    versions = [(await call(router, "register_model", model_name="a", model_s3_uri=uri))["version"] for _ in range(3)]
    other = await call(router, "register_model", model_name="b", model_s3_uri=uri)
    assert versions == [1, 2, 3]
    assert other["version"] == 1


async def test_register_uses_given_dataset_uri_and_actor(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    uri = make_local_bundle("models/a")
    router.storage.write_bytes(router.storage.resolve("data/train.csv"), b"x,y\n1,2\n")
    out = await call(
        router,
        "register_model",
        model_name="m",
        model_s3_uri=uri,
        dataset_s3_uri="data/train.csv",
        registered_by="ci-bot",
    )
    assert out["lineage"]["dataset_s3_uri"] == router.storage.resolve("data/train.csv").uri
    assert out["lineage"]["training_data_uri"] == "data/iris_train.parquet"
    assert out["registered_by"] == "ci-bot"


async def test_register_refuses_missing_dataset(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    uri = make_local_bundle("models/a")
    text = await call_error(router, "register_model", model_name="m", model_s3_uri=uri, dataset_s3_uri="data/nope.csv")
    assert "dataset_s3_uri" in text and "does not exist" in text
    assert RegistryStore(router.storage).catalog() == {}


async def test_register_refuses_tampered_bundle(any_router: ToolRouter, make_bundle: MakeBundle) -> None:
    uri = make_bundle("models/tampered")
    storage = any_router.storage
    model_loc = storage.join(storage.resolve(uri), "model.skops")
    storage.write_bytes(model_loc, storage.read_bytes(model_loc) + b"\x00")
    text = await call_error(any_router, "register_model", model_name="m", model_s3_uri=uri)
    assert "sha256" in text and "tampered" in text
    assert RegistryStore(storage).catalog() == {}


async def test_register_refuses_pickle_file(router: ToolRouter) -> None:
    router.storage.write_bytes(router.storage.resolve("models/model.pkl"), b"\x80\x04K\x01.")
    text = await call_error(router, "register_model", model_name="m", model_s3_uri="models/model.pkl")
    assert "pickle" in text
    assert RegistryStore(router.storage).catalog() == {}


async def test_register_refuses_folder_that_is_not_a_bundle(router: ToolRouter) -> None:
    text = await call_error(router, "register_model", model_name="m", model_s3_uri="models/nothing")
    assert "not a model bundle" in text


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "a..b", "-flag", ".hidden", "x" * 129, "", "sp ace"])
async def test_register_refuses_unsafe_model_names(
    router: ToolRouter, make_local_bundle: MakeBundle, name: str
) -> None:
    uri = make_local_bundle("models/a")
    text = await call_error(router, "register_model", model_name=name, model_s3_uri=uri)
    assert "model_name" in text
    assert not (router.storage.root / "registry").exists()
    assert not (router.storage.root / "escape").exists()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("metrics", {"acc>=": 0.5}, "metric name"),
        ("tags", {"bad key!": "x"}, "tag key"),
    ],
)
async def test_register_refuses_bad_metrics_and_tags(
    router: ToolRouter, make_local_bundle: MakeBundle, field: str, value: Any, expected: str
) -> None:
    uri = make_local_bundle("models/a")
    text = await call_error(router, "register_model", model_name="m", model_s3_uri=uri, **{field: value})
    assert expected in text


async def test_register_refuses_unknown_field(router: ToolRouter) -> None:
    text = await call_error(router, "register_model", model_name="m", model_s3_uri="x", stage="prod")
    assert "stage" in text and "unknown field" in text


# ----------------------------------------------------------------------------- attacks: bundles that cannot load
@pytest.mark.parametrize("planted", ["pickle", "untrusted_type"])
async def test_attack_register_refuses_bundle_that_cannot_be_loaded_safely(
    router: ToolRouter, make_local_bundle: MakeBundle, planted: str
) -> None:
    from tests.crafted import PICKLE_BYTES, plant, skops_naming

    uri = make_local_bundle("models/planted")
    data = PICKLE_BYTES if planted == "pickle" else skops_naming("os", "system")
    plant(router.storage.root / "models" / "planted", "model.skops", data)
    text = await call_error(router, "register_model", model_name="m", model_s3_uri=uri)
    assert "model.skops is not a readable skops file" in text or "not allowed: ['os.system']" in text
    assert RegistryStore(router.storage).catalog() == {}


@pytest.mark.parametrize(
    "tags",
    [{"webhook_url": "https://example.org/x"}, {"api_token": "abc"}, {"note": "ghp_" + "a" * 36}],
)
async def test_attack_register_refuses_secrets_in_tags(
    router: ToolRouter, make_local_bundle: MakeBundle, tags: dict[str, str]
) -> None:
    uri = make_local_bundle("models/a")
    text = await call_error(router, "register_model", model_name="m", model_s3_uri=uri, tags=tags)
    assert "looks like a secret" in text
    assert all(v not in text for v in tags.values())
    assert RegistryStore(router.storage).catalog() == {}
