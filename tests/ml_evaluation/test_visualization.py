from __future__ import annotations

import base64
from pathlib import Path

import mcp_types as types
import pytest

from mcp_server.client import structured
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_evaluation.builders import Trained
from tests.ml_evaluation.checks import assert_png

CASES = [
    ("xgb", "confusion_matrix", True),
    ("xgb", "roc_curve", True),
    ("rf", "roc_curve", True),
    ("xgb", "pr_curve", True),
    ("xgb", "feature_importance", False),  # recorded in the metadata
    ("rf", "feature_importance", False),  # from feature_importances_
    ("logreg", "feature_importance", False),  # from |coef_| of the pipeline's last step
    ("xgb", "learning_curve", False),
    ("rf_reg", "residuals", True),
    ("kmeans", "clusters", True),
    ("dbscan", "clusters", True),
    ("ppo", "reward_curve", False),
]


@pytest.mark.parametrize(("name", "plot_type", "needs_data"), CASES)
async def test_plot_is_returned_as_png_image_and_saved(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path, name: str, plot_type: str, needs_data: bool
) -> None:
    model = trained[name]
    args = {"model_s3_uri": model.uri, "plot_type": plot_type}
    if needs_data:
        args["test_data_s3_uri"] = model.test_uri
    result = await eval_router.call("visualization", args)
    assert not result.is_error, result.content
    out = structured(result)
    images = [c for c in result.content if isinstance(c, types.ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    png = base64.b64decode(images[0].data)
    width, height = assert_png(png)
    assert width >= 300 and height >= 200
    assert out["image_s3_uri"] == f"{model.uri}/plots/{plot_type}.png"
    assert Path(out["image_s3_uri"].removeprefix("file://")).read_bytes() == png
    assert out["bytes"] == len(png)
    links = [c for c in result.content if isinstance(c, types.ResourceLink)]
    assert [link.uri for link in links] == [out["image_s3_uri"]]


async def test_plot_saved_at_output_uri(eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path) -> None:
    out = await call(
        eval_router,
        "visualization",
        model_s3_uri=trained["rf"].uri,
        plot_type="confusion_matrix",
        test_data_s3_uri=trained["rf"].test_uri,
        output_s3_uri="plots/rf-cm.png",
    )
    assert out["image_s3_uri"] == (eval_root / "plots" / "rf-cm.png").as_uri()
    assert_png((eval_root / "plots" / "rf-cm.png").read_bytes())


async def test_unknown_plot_type_is_refused(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    text = await call_error(eval_router, "visualization", model_s3_uri=trained["rf"].uri, plot_type="heatmap")
    assert "plot_type" in text and "confusion_matrix" in text


async def test_plot_for_another_task_is_refused(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    reg = trained["rf_reg"]
    text = await call_error(
        eval_router, "visualization", model_s3_uri=reg.uri, plot_type="roc_curve", test_data_s3_uri=reg.test_uri
    )
    assert "plot_type" in text and "classification model" in text and "residuals" in text


async def test_prediction_plot_needs_test_data(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    text = await call_error(eval_router, "visualization", model_s3_uri=trained["rf"].uri, plot_type="roc_curve")
    assert "test_data_s3_uri" in text


async def test_reward_curve_needs_rl_history(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    text = await call_error(eval_router, "visualization", model_s3_uri=trained["xgb"].uri, plot_type="reward_curve")
    assert "episode_return_mean" in text and "learning_curve" in text


async def test_learning_curve_needs_history(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    text = await call_error(eval_router, "visualization", model_s3_uri=trained["rf"].uri, plot_type="learning_curve")
    assert "no training history" in text


async def test_feature_importance_needs_importances_or_coefficients(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    text = await call_error(
        eval_router, "visualization", model_s3_uri=trained["kmeans"].uri, plot_type="feature_importance"
    )
    assert "feature_importances_" in text and "coef_" in text


async def test_failed_plot_writes_nothing(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    await call_error(
        eval_router,
        "visualization",
        model_s3_uri=trained["rf"].uri,
        plot_type="learning_curve",
        output_s3_uri="x/lc.png",
    )
    assert not (eval_root / "x" / "lc.png").exists()


async def test_bundle_plot_refuses_a_test_data_uri_that_does_not_exist(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    text = await call_error(
        eval_router,
        "visualization",
        model_s3_uri=trained["rf"].uri,
        plot_type="feature_importance",
        test_data_s3_uri="data/no-such-test.parquet",
    )
    assert text.startswith("test_data_s3_uri: ") and "does not exist" in text and "leave test_data_s3_uri out" in text


async def test_bundle_plot_warns_that_existing_test_data_is_unused(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    out = await call(
        eval_router,
        "visualization",
        model_s3_uri=trained["rf"].uri,
        plot_type="feature_importance",
        test_data_s3_uri=trained["rf"].test_uri,
    )
    assert out["warnings"] == ["test_data_s3_uri is not used: feature_importance is drawn from the model bundle"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("models/rf/model.png", "inside the model bundle"),
        ("models/logreg/evaluations/../plots/x.png", "'..'"),
        ("models/logreg/notes/x.png", "inside the model bundle"),
        ("registry/rf/plot.png", "only the server itself writes"),
        ("jobs/plot.png", "only the server itself writes"),
    ],
)
async def test_attack_plot_output_into_a_bundle_or_server_prefix_is_refused(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path, target: str, expected: str
) -> None:
    text = await call_error(
        eval_router,
        "visualization",
        model_s3_uri=trained["rf"].uri,
        plot_type="feature_importance",
        output_s3_uri=target,
    )
    assert "output_s3_uri" in text and expected in text
    assert not (eval_root / "models" / "rf" / "model.png").exists()


async def test_plot_inside_a_bundle_under_plots_is_allowed(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    out = await call(
        eval_router,
        "visualization",
        model_s3_uri=trained["rf"].uri,
        plot_type="feature_importance",
        output_s3_uri="models/logreg/plots/rf-importance.png",
    )
    assert out["image_s3_uri"].endswith("models/logreg/plots/rf-importance.png")
