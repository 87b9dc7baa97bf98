"""Matplotlib helpers for ml_evaluation (plots and reports): each function returns PNG bytes.

Figures are built with the object API (`matplotlib.figure.Figure` + the Agg canvas), never through
pyplot: tools run in worker threads and pyplot's global figure registry is neither thread-safe
nor something a server should accumulate. The Agg backend is selected before anything could
import pyplot, so no display is ever needed.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_lock = threading.Lock()  # font and text caches inside matplotlib are shared between figures
DEFAULT_SIZE = (6.4, 4.8)
DPI = 100
NOISE_LABEL = -1
_agg_selected = False


def _use_agg() -> None:
    """Select Agg once: switching backends later would close figures other code holds."""
    global _agg_selected
    if not _agg_selected:
        import matplotlib

        matplotlib.use("Agg")
        _agg_selected = True


def _new_figure(size: tuple[float, float]) -> Figure:
    _use_agg()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def render(draw: Callable[[Figure], None], size: tuple[float, float] = DEFAULT_SIZE) -> bytes:
    """Run `draw(figure)` on a fresh figure and return it as PNG bytes; the figure is released."""
    with _lock:
        figure = _new_figure(size)
        try:
            draw(figure)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=DPI)
            return buffer.getvalue()
        finally:
            figure.clear()


def _labels(values: Sequence[Any]) -> list[str]:
    return [str(v) for v in values]


def confusion_matrix_png(
    matrix: Sequence[Sequence[int]], labels: Sequence[Any], title: str = "Confusion matrix"
) -> bytes:
    counts = np.asarray(matrix, dtype=float)
    names = _labels(labels)
    side = max(4.8, 0.55 * len(names) + 2.5)

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        image = ax.imshow(counts, cmap="Blues")
        figure.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 4 else 0, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("Predicted label")
        ax.set_ylabel("True label")
        ax.set_title(title)
        if len(names) <= 20:  # cell counts stay legible up to about 20 classes
            threshold = counts.max() / 2 if counts.size else 0
            for (i, j), value in np.ndenumerate(counts):
                color = "white" if value > threshold else "black"
                ax.text(j, i, f"{int(value)}", ha="center", va="center", color=color, fontsize=9)

    return render(draw, (side + 1.2, side))


def _one_vs_rest(y_true: Any, scores: Any, classes: Sequence[Any]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, is_positive, score) per curve: one curve for binary (the second class), else one per class."""
    truth = np.asarray(y_true)
    probabilities = np.asarray(scores, dtype=float)
    if len(classes) == 2:
        return [(str(classes[1]), truth == classes[1], probabilities[:, 1])]
    return [(str(c), truth == c, probabilities[:, i]) for i, c in enumerate(classes)]


Curve = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, str]]


def _curves_png(
    y_true: Any, scores: Any, classes: Sequence[Any], curve: Curve, title: str, axes: tuple[str, str], diagonal: bool
) -> bytes:
    """One curve per class (one for binary): `curve(is_positive, score)` gives (x, y, legend note)."""
    curves = _one_vs_rest(y_true, scores, classes)

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        for name, positive, score in curves:
            if positive.all() or not positive.any():
                continue  # a class absent from the data (or alone in it) has no curve
            xs, ys, note = curve(positive, score)
            ax.plot(xs, ys, label=f"{name} ({note})")
        if diagonal:
            ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])
        ax.set_title(title if len(classes) == 2 else f"{title} (one-vs-rest)")
        ax.legend(loc="lower right" if diagonal else "lower left", fontsize=8)

    return render(draw)


def roc_curve_png(y_true: Any, scores: Any, classes: Sequence[Any], title: str = "ROC curve") -> bytes:
    from sklearn import metrics as skm

    def roc(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        fpr, tpr, _ = skm.roc_curve(positive, score)
        return fpr, tpr, f"AUC {skm.auc(fpr, tpr):.3f}"

    return _curves_png(y_true, scores, classes, roc, title, ("False positive rate", "True positive rate"), True)


def pr_curve_png(y_true: Any, scores: Any, classes: Sequence[Any], title: str = "Precision-recall curve") -> bytes:
    from sklearn import metrics as skm

    def pr(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        precision, recall, _ = skm.precision_recall_curve(positive, score)
        return recall, precision, f"AP {skm.average_precision_score(positive, score):.3f}"

    return _curves_png(y_true, scores, classes, pr, title, ("Recall", "Precision"), False)


def bar_chart_png(values: Mapping[str, float], title: str, xlabel: str) -> bytes:
    """Horizontal bars, largest on top (feature importances)."""
    items = sorted(values.items(), key=lambda kv: kv[1])
    height = max(3.0, 0.28 * len(items) + 1.5)

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        ax.barh([k for k, _ in items], [v for _, v in items], color="#4C72B0")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=8)

    return render(draw, (7.0, height))


def residuals_png(y_true: Any, y_pred: Any, title: str = "Residuals") -> bytes:
    truth = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    residual = truth - predicted

    def draw(figure: Figure) -> None:
        left, right = figure.subplots(1, 2)
        left.scatter(predicted, residual, s=12, alpha=0.7)
        left.axhline(0, color="grey", linestyle="--", linewidth=1)
        left.set_xlabel("Predicted")
        left.set_ylabel("Residual (actual - predicted)")
        left.set_title(title)
        right.scatter(truth, predicted, s=12, alpha=0.7)
        low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
        right.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        right.set_xlabel("Actual")
        right.set_ylabel("Predicted")
        right.set_title("Predicted vs actual")

    return render(draw, (10.0, 4.5))


def clusters_png(
    points: Any, labels: Any, centers: Any = None, title: str = "Clusters", axis_names: Sequence[str] = ("PC1", "PC2")
) -> bytes:
    """A 2-D scatter coloured by cluster; noise (-1) in grey crosses, centers as black stars."""
    xy = np.asarray(points, dtype=float)
    assigned = np.asarray(labels)

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        clusters = sorted({int(v) for v in assigned.tolist()} - {NOISE_LABEL})
        palette = _palette(len(clusters))
        for color, cluster in zip(palette, clusters, strict=True):
            mask = assigned == cluster
            ax.scatter(xy[mask, 0], xy[mask, 1], s=14, color=color, label=f"cluster {cluster}", alpha=0.8)
        noise = assigned == NOISE_LABEL
        if noise.any():
            ax.scatter(xy[noise, 0], xy[noise, 1], s=14, color="grey", marker="x", label="noise", alpha=0.7)
        if centers is not None:
            c = np.asarray(centers, dtype=float)
            ax.scatter(c[:, 0], c[:, 1], s=120, color="black", marker="*", label="centers")
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
        ax.set_title(title)
        ax.legend(fontsize=8, loc="best")

    return render(draw)


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def line_chart_png(
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    xlabel: str,
    ylabel: str,
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
) -> bytes:
    """One line per series (None values are gaps); `band` shades a (low, high) range."""
    xs = np.asarray(x, dtype=float)

    def as_float(values: Sequence[float | None]) -> np.ndarray:
        return np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)

    def draw(figure: Figure) -> None:
        ax: Axes = figure.add_subplot()
        for name, values in series.items():
            ax.plot(xs, as_float(values), marker="o" if len(xs) <= 30 else None, markersize=3, label=name)
        if band is not None:
            ax.fill_between(xs, as_float(band[0]), as_float(band[1]), alpha=0.2, label="min-max")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    return render(draw)
