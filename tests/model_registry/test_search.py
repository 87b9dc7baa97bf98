from __future__ import annotations

import pytest

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.model_registry.helpers import MakeBundle

# (model, accuracy, tags)
CATALOG = [
    ("fraud-rf", 0.91, {"team": "risk", "env": "prod"}),
    ("fraud-rf", 0.95, {"team": "risk", "env": "dev"}),
    ("fraud-xgb", 0.88, {"team": "risk"}),
    ("churn-nn", 0.97, {"team": "growth"}),
    ("churn-nn", 0.70, {"team": "growth"}),
]


@pytest.fixture
async def catalog(any_router: ToolRouter, make_bundle: MakeBundle) -> ToolRouter:
    uri = make_bundle("models/a")
    for name, accuracy, tags in CATALOG:
        await call(
            any_router, "register_model", model_name=name, model_s3_uri=uri, metrics={"accuracy": accuracy}, tags=tags
        )
    await call(any_router, "update_model_status", model_name="fraud-rf", version=2, status="production")
    await call(any_router, "update_model_status", model_name="churn-nn", version=1, status="staging")
    return any_router


def _ids(out: dict) -> list[tuple[str, int]]:
    return [(m["model_name"], m["version"]) for m in out["models"]]


async def test_search_filters_by_metric_and_orders_by_metric(catalog: ToolRouter) -> None:
    out = await call(catalog, "search_models", metric="accuracy>=0.9", order_by="metrics.accuracy desc")
    assert _ids(out) == [("churn-nn", 1), ("fraud-rf", 2), ("fraud-rf", 1)]
    assert [m["metrics"]["accuracy"] for m in out["models"]] == [0.97, 0.95, 0.91]
    assert out["total_matches"] == 3 and out["next_cursor"] is None


async def test_search_combines_name_status_tags_and_several_metric_filters(catalog: ToolRouter) -> None:
    assert _ids(await call(catalog, "search_models", name_contains="FRAUD")) == [
        ("fraud-rf", 1),
        ("fraud-rf", 2),
        ("fraud-xgb", 1),
    ]
    assert _ids(await call(catalog, "search_models", status="production")) == [("fraud-rf", 2)]
    assert _ids(await call(catalog, "search_models", status=["staging", "production"])) == [
        ("churn-nn", 1),
        ("fraud-rf", 2),
    ]
    assert _ids(await call(catalog, "search_models", tags={"team": "risk", "env": "prod"})) == [("fraud-rf", 1)]
    out = await call(catalog, "search_models", metric=["accuracy>0.8", "accuracy!=0.95", "accuracy < 0.97"])
    assert _ids(out) == [("fraud-rf", 1), ("fraud-xgb", 1)]
    assert _ids(await call(catalog, "search_models", metric="accuracy==0.7")) == [("churn-nn", 2)]
    # Versions without the metric are left out of metric filters.
    assert (await call(catalog, "search_models", metric="roc_auc>=0"))["models"] == []


async def test_search_orders_by_fields(catalog: ToolRouter) -> None:
    out = await call(catalog, "search_models", order_by="version desc")
    assert [m["version"] for m in out["models"]] == [2, 2, 1, 1, 1]
    out = await call(catalog, "search_models", order_by="created_at")
    assert [m["created_at"] for m in out["models"]] == sorted(m["created_at"] for m in out["models"])
    assert out["order_by"] == "created_at asc"


async def test_search_metric_order_puts_missing_metric_last(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    uri = make_local_bundle("models/a")
    await call(router, "register_model", model_name="a", model_s3_uri=uri, metrics={"r2": 0.3})
    await call(router, "register_model", model_name="b", model_s3_uri=uri, metrics={"r2": 0.8})
    plain = make_local_bundle("models/b", metrics={})
    await call(router, "register_model", model_name="c", model_s3_uri=plain)
    for order in ("metrics.r2 desc", "metrics.r2 asc"):
        out = await call(router, "search_models", order_by=order)
        assert _ids(out)[-1] == ("c", 1)
    assert _ids(await call(router, "search_models", order_by="metrics.r2 desc"))[:2] == [("b", 1), ("a", 1)]


async def test_search_paginates_with_stable_cursor(catalog: ToolRouter, make_bundle: MakeBundle) -> None:
    first = await call(catalog, "search_models", order_by="metrics.accuracy desc", limit=2)
    assert _ids(first) == [("churn-nn", 1), ("fraud-rf", 2)] and first["total_matches"] == 5
    assert first["next_cursor"] and first["next_page_token"] == first["next_cursor"]
    # A version registered between pages must neither shift nor repeat what was already returned.
    await call(
        catalog, "register_model", model_name="aaa", model_s3_uri=make_bundle("models/b"), metrics={"accuracy": 0.99}
    )
    second = await call(
        catalog, "search_models", order_by="metrics.accuracy desc", limit=2, cursor=first["next_cursor"]
    )
    assert _ids(second) == [("fraud-rf", 1), ("fraud-xgb", 1)]
    third = await call(
        catalog, "search_models", order_by="metrics.accuracy desc", limit=2, page_token=second["next_cursor"]
    )
    assert _ids(third) == [("churn-nn", 2)] and third["next_cursor"] is None


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("accuracy=0.9", "cannot parse metric filter"),
        ("accuracy>=high", "is not a number"),
        ("accuracy>=nan", "not a finite number"),
        (">=0.9", "cannot parse"),
        ("accuracy >= 0.9; drop", "cannot parse"),
        ("accuracy=>0.9", "cannot parse"),
    ],
)
async def test_search_refuses_malformed_metric_filters(router: ToolRouter, metric: str, expected: str) -> None:
    text = await call_error(router, "search_models", metric=metric)
    assert expected in text and "metric" in text and ">=" in text


@pytest.mark.parametrize("order_by", ["accuracy desc", "metrics. desc", "version sideways", "colour"])
async def test_search_refuses_malformed_order_by(router: ToolRouter, order_by: str) -> None:
    text = await call_error(router, "search_models", order_by=order_by)
    assert "order_by" in text


async def test_search_refuses_foreign_or_forged_cursor(catalog: ToolRouter) -> None:
    first = await call(catalog, "search_models", limit=1)
    text = await call_error(catalog, "search_models", limit=1, cursor=first["next_cursor"], status="production")
    assert "different search" in text
    text = await call_error(catalog, "search_models", cursor="not-a-cursor")
    assert "not a cursor" in text
    text = await call_error(catalog, "search_models", cursor=first["next_cursor"], page_token="other")
    assert "differ" in text


async def test_search_on_empty_registry(router: ToolRouter) -> None:
    out = await call(router, "search_models")
    assert out["models"] == [] and out["total_matches"] == 0 and out["next_cursor"] is None


async def test_search_skips_an_unreadable_document(catalog: ToolRouter) -> None:
    storage = catalog.storage
    storage.write_bytes(storage.resolve("registry/fraud-xgb/versions/1.json"), b"{not json")
    out = await call(catalog, "search_models", name_contains="fraud")
    assert _ids(out) == [("fraud-rf", 1), ("fraud-rf", 2)]
    text = await call_error(catalog, "list_model_versions", model_name="fraud-xgb")
    assert "not valid JSON" in text
