"""Long per-iteration series in tool results, summarised: the full series stays in storage.

A 1,000-round XGBoost history is ~25k tokens; a client needs its shape, not every round. Every
place that returns a `history` passes it through `capped_history`, which keeps at most
`MAX_HISTORY` evenly spaced entries (always the first, the best and the last), says how many
there are, and links the stored full series (the bundle's metadata.json or the job record).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MAX_HISTORY = 50
# Metric names where lower is better; everything else (accuracy, r2, auc, returns) is higher-better.
_LOWER_IS_BETTER = ("loss", "error", "rmse", "mse", "mae", "mape", "inertia", "davies_bouldin")
# Which recorded value says "best", in order of preference.
_SCORE_PREFIXES = ("val_", "validation_", "episode_return_mean", "silhouette", "loss", "train_")


def capped_history(
    history: Sequence[dict[str, Any]] | None, full_uri: str | None, *, limit: int = MAX_HISTORY
) -> dict[str, Any]:
    """`{"history": [...], "history_total": n, "history_s3_uri": uri}` for a result model."""
    entries = [_rounded(entry) for entry in history or []]
    total = len(entries)
    if total <= limit:
        return {"history": entries, "history_total": total, "history_s3_uri": full_uri if total else None}
    # limit - 1 evenly spaced entries (first and last among them), plus the best one.
    spacing = (total - 1) / (limit - 2)
    keep = {round(step * spacing) for step in range(limit - 1)}
    best = best_index(entries)
    if best is not None:
        keep.add(best)
    return {"history": [entries[i] for i in sorted(keep)], "history_total": total, "history_s3_uri": full_uri}


def _rounded(entry: dict[str, Any]) -> dict[str, Any]:
    """Scores to 6 significant digits (a float's 17 cost ~3x the tokens); stored entries keep all."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) and math.isfinite(v) else v for k, v in entry.items()}


def best_index(entries: Sequence[dict[str, Any]]) -> int | None:
    """The entry with the best score (validation first, then returns, silhouette, loss), if any."""
    key = _score_key(entries[0]) if entries else None
    if key is None:
        return None
    lower = any(part in key for part in _LOWER_IS_BETTER)
    scored = [(i, e.get(key)) for i, e in enumerate(entries)]
    valid = [(i, float(v)) for i, v in scored if isinstance(v, int | float) and math.isfinite(v)]
    if not valid:
        return None
    return (min if lower else max)(valid, key=lambda pair: pair[1])[0]


def _score_key(entry: dict[str, Any]) -> str | None:
    numeric = [k for k, v in entry.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    for prefix in _SCORE_PREFIXES:
        for key in numeric:
            if key.startswith(prefix):
                return key
    return None
