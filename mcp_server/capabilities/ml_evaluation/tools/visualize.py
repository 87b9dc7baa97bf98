"""visualization: one plot of a model (from test predictions or the bundle's own records) as PNG."""

from __future__ import annotations

from typing import Any

import numpy as np

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.capabilities.ml_evaluation import plots
from mcp_server.capabilities.ml_evaluation.schemas import VisualizationInput, VisualizationOutput
from mcp_server.common import bundles
from mcp_server.common import metrics as m
from mcp_server.common.bundles import Bundle
from mcp_server.common.exceptions import InvalidInputError, NotFoundError

# Plots drawn from predictions on test data, and the task they need.
PREDICTION_PLOTS = {
    "confusion_matrix": ev.CLASSIFICATION,
    "roc_curve": ev.CLASSIFICATION,
    "pr_curve": ev.CLASSIFICATION,
    "residuals": ev.REGRESSION,
    "clusters": ev.CLUSTERING,
}
_X_KEYS = ("epoch", "iteration", "training_iteration", "step", "episode", "timesteps_total")


def check_plot_applies(bundle: Bundle, plot_type: str) -> None:
    task = PREDICTION_PLOTS.get(plot_type)
    if task is not None and bundle.task_type != task:
        raise InvalidInputError(
            f"{plot_type} needs a {task} model, and {bundle.uri} is a {bundle.task_type} model",
            field="plot_type",
            hint=_plots_for(bundle.task_type),
        )


def _plots_for(task: str) -> str:
    fitting = [p for p, t in PREDICTION_PLOTS.items() if t == task]
    return f"Plots for a {task} model: {', '.join([*fitting, 'feature_importance', 'learning_curve'])}."


def feature_importance(bundle: Bundle) -> dict[str, float]:
    """From the metadata, else the model's feature_importances_ or |coef_| (averaged over classes)."""
    recorded = bundle.metadata.get("feature_importance")
    if isinstance(recorded, dict) and recorded:
        return {str(k): float(v) for k, v in recorded.items() if v is not None}
    model = getattr(bundle.model, "_final_estimator", bundle.model)
    values = getattr(model, "feature_importances_", None)
    if values is None and getattr(model, "coef_", None) is not None:
        values = np.abs(np.atleast_2d(np.asarray(model.coef_, dtype=float))).mean(axis=0)
    if values is None:
        raise InvalidInputError(
            f"{bundle.metadata.get('algorithm')} records no feature importance and its model has neither "
            "feature_importances_ nor coef_",
            field="plot_type",
            hint="Use a tree or linear model, or another plot_type.",
        )
    values = np.asarray(values, dtype=float).ravel()
    names = bundle.feature_names
    if len(names) != len(values):
        names = [f"feature_{i}" for i in range(len(values))]
    return dict(zip(names, values.tolist(), strict=True))


def history_rows(bundle: Bundle) -> list[dict[str, Any]]:
    """The training history as one dict per iteration (a dict of lists is accepted too)."""
    history = bundle.metadata.get("history")
    if isinstance(history, dict):
        length = max((len(v) for v in history.values() if isinstance(v, list)), default=0)
        return [{k: v[i] for k, v in history.items() if isinstance(v, list) and i < len(v)} for i in range(length)]
    if isinstance(history, list):
        return [row for row in history if isinstance(row, dict)]
    return []


def _numeric_keys(rows: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in keys and isinstance(value, int | float) and not isinstance(value, bool):
                keys.append(key)
    return keys


def _x_axis(rows: list[dict[str, Any]], keys: list[str]) -> tuple[str, list[float]]:
    for key in _X_KEYS:
        if key in keys:
            return key, [float(row.get(key, i)) for i, row in enumerate(rows)]
    return "iteration", [float(i + 1) for i in range(len(rows))]


def learning_curve_png(bundle: Bundle) -> bytes:
    rows = history_rows(bundle)
    keys = _numeric_keys(rows)
    x_key, xs = _x_axis(rows, keys)
    # Episode returns are the reward curve's; timings are not learning.
    series = [k for k in keys if k != x_key and k not in _X_KEYS and "time" not in k and not k.startswith("episode_")]
    losses = [k for k in series if "loss" in k]
    shown = losses or series  # losses share a scale; other curves only when there is no loss
    if not rows or not shown:
        raise InvalidInputError(
            f"{bundle.uri} has no training history to plot",
            field="plot_type",
            hint="learning_curve needs a model trained by an iterative trainer (XGBoost, neural network).",
        )
    return plots.line_chart_png(
        xs,
        {k: [row.get(k) for row in rows] for k in shown},
        title=f"Learning curve: {bundle.metadata.get('algorithm')}",
        xlabel=x_key,
        ylabel="loss" if losses else "value",
    )


def reward_curve_png(bundle: Bundle, evaluation_returns: list[float] | None = None) -> bytes:
    """The mean episode return per training iteration (min-max band), and the mean return of a
    greedy evaluation (evaluate_reinforcement) as a flat line when one is given."""
    rows = [row for row in history_rows(bundle) if row.get("episode_return_mean") is not None]
    if not rows:
        raise InvalidInputError(
            f"{bundle.uri} has no reinforcement-learning history (episode_return_mean per iteration)",
            field="plot_type",
            hint="reward_curve is for models trained by train_ppo, train_dqn or train_a3c; use learning_curve.",
        )
    x_key, xs = _x_axis(rows, _numeric_keys(rows))
    band = None
    if all("episode_return_min" in r and "episode_return_max" in r for r in rows):
        band = ([r["episode_return_min"] for r in rows], [r["episode_return_max"] for r in rows])
    series: dict[str, list[Any]] = {"episode_return_mean": [r["episode_return_mean"] for r in rows]}
    if evaluation_returns:
        mean = float(np.mean(evaluation_returns))
        series[f"greedy evaluation: mean of {len(evaluation_returns)} episodes"] = [mean] * len(rows)
    return plots.line_chart_png(
        xs,
        series,
        title=f"Reward curve: {bundle.metadata.get('algorithm')}",
        xlabel=x_key,
        ylabel="episode return",
        band=band,
    )


def clusters_png(p: ev.Predictions) -> bytes:
    x = p.x
    centers = getattr(p.bundle.model, "cluster_centers_", None)
    if x.shape[1] <= 2:
        xy = x if x.shape[1] == 2 else np.column_stack([x[:, 0], np.zeros(len(x))])
        names = ([*p.bundle.feature_names, "", ""])[:2]
        projected_centers = None if centers is None or x.shape[1] != 2 else centers
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(x)
        xy = pca.transform(x)
        ratio = pca.explained_variance_ratio_
        names = [f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%} of variance)"]
        projected_centers = None if centers is None else pca.transform(np.asarray(centers, dtype=float))
    return plots.clusters_png(
        xy, p.y_pred, projected_centers, title=f"Clusters: {p.bundle.metadata.get('algorithm')}", axis_names=names
    )


def render_plot(
    plot_type: str,
    bundle: Bundle,
    predictions: ev.Predictions | None,
    top_n: int = 20,
    evaluation_returns: list[float] | None = None,
) -> bytes:
    """PNG bytes of `plot_type`; prediction plots need `predictions` on test data."""
    check_plot_applies(bundle, plot_type)
    if plot_type == "feature_importance":
        ranked = sorted(feature_importance(bundle).items(), key=lambda kv: abs(kv[1]), reverse=True)[:top_n]
        return plots.bar_chart_png(
            dict(ranked), f"Feature importance: {bundle.metadata.get('algorithm')}", "importance"
        )
    if plot_type == "learning_curve":
        return learning_curve_png(bundle)
    if plot_type == "reward_curve":
        return reward_curve_png(bundle, evaluation_returns)
    if predictions is None:
        raise InvalidInputError(
            f"{plot_type} is drawn from predictions on test data",
            field="test_data_s3_uri",
            hint="Pass test_data_s3_uri.",
        )
    p = predictions
    if plot_type == "confusion_matrix":
        details = m.classification_details(p.y_true, p.y_pred, p.classes)
        return plots.confusion_matrix_png(details["confusion_matrix"], p.classes)
    if plot_type == "residuals":
        return plots.residuals_png(p.y_true, p.y_pred)
    if plot_type == "clusters":
        return clusters_png(p)
    if p.y_score is None:
        raise InvalidInputError(
            f"{plot_type} needs class probabilities, which this model does not give on this data",
            field="plot_type",
            hint="Use confusion_matrix instead.",
        )
    if plot_type == "roc_curve":
        return plots.roc_curve_png(p.y_true, p.y_score, p.classes)
    return plots.pr_curve_png(p.y_true, p.y_score, p.classes)


def visualization(ctx: ToolContext, params: VisualizationInput) -> ToolOutput:
    bundle = bundles.read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri")
    check_plot_applies(bundle, params.plot_type)
    folder = ctx.storage.resolve(bundle.uri, "model_s3_uri")
    dest = (
        ctx.storage.resolve(params.output_s3_uri, "output_s3_uri")
        if params.output_s3_uri
        else ctx.storage.join(folder, "plots", f"{params.plot_type}.png")
    )
    ctx.storage.check_output(dest, "output_s3_uri", "evaluation")
    predictions = None
    warnings = []
    if params.plot_type not in PREDICTION_PLOTS and params.test_data_s3_uri:
        # Drawn from the bundle: test data is not read, but a wrong URI must not pass silently.
        test_loc = ctx.storage.resolve(params.test_data_s3_uri, "test_data_s3_uri")
        if not ctx.storage.exists(test_loc):
            raise NotFoundError(
                f"{params.test_data_s3_uri} does not exist",
                field="test_data_s3_uri",
                hint=f"{params.plot_type} is drawn from the model bundle: leave test_data_s3_uri out.",
            )
        warnings.append(f"test_data_s3_uri is not used: {params.plot_type} is drawn from the model bundle")
    if params.plot_type in PREDICTION_PLOTS:
        if not params.test_data_s3_uri:
            raise InvalidInputError(
                f"{params.plot_type} is drawn from predictions on test data",
                field="test_data_s3_uri",
                hint="Pass test_data_s3_uri.",
            )
        _, frame = ev.read_test_data(ctx.storage, params.test_data_s3_uri)
        predictions = ev.predict_on(bundle, frame, params.target_column)
    returns = None
    if params.evaluation_s3_uri and params.plot_type == "reward_curve":
        record = ev.read_evaluation(ctx.storage, params.evaluation_s3_uri)
        returns = [float(r) for r in record.get("returns") or []]
        if not returns:
            raise InvalidInputError(
                f"{params.evaluation_s3_uri} holds no episode returns",
                field="evaluation_s3_uri",
                hint="Pass the evaluation_s3_uri that evaluate_reinforcement returned.",
            )
    ctx.check_cancelled()
    png = render_plot(params.plot_type, bundle, predictions, params.top_n, returns)
    digest = ctx.storage.write_bytes(dest, png, "image/png")
    data = VisualizationOutput(
        model_s3_uri=bundle.uri,
        plot_type=params.plot_type,
        image_s3_uri=dest.uri,
        bytes=len(png),
        sha256=digest,
        warnings=warnings,
    )
    return ToolOutput(
        data=data,
        images=[png],
        artifacts=[Artifact(uri=dest.uri, name=dest.name, mime_type="image/png")],
        summary=f"{params.plot_type} of {bundle.metadata.get('algorithm')} saved to {dest.uri}",
    )
