"""capped_history: long series summarised to at most 50 entries (first, best, last), linked in full."""

from __future__ import annotations

import itertools

from mcp_server.common.history import MAX_HISTORY, best_index, capped_history


def rounds(n: int, best_at: int) -> list[dict[str, float]]:
    """A validation loss that falls to its minimum at `best_at`, then rises (overfitting)."""
    return [{"iteration": i, "validation_logloss": 1.0 + abs(i - best_at) / n} for i in range(n)]


def test_short_history_is_returned_whole_with_scores_to_six_digits() -> None:
    series = [{"epoch": 1, "loss": 0.6931471805599453, "val_loss": float("nan")}, {"epoch": 2, "loss": 0.25}]
    out = capped_history(series, "s3://b/m/metadata.json")
    assert out["history_total"] == 2 and out["history_s3_uri"] == "s3://b/m/metadata.json"
    assert out["history"][0]["loss"] == 0.693147 and out["history"][1] == {"epoch": 2, "loss": 0.25}
    assert out["history"][0]["epoch"] == 1 and out["history"][0]["val_loss"] != out["history"][0]["val_loss"]


def test_empty_history_links_nothing() -> None:
    assert capped_history(None, "s3://b/m/metadata.json") == {"history": [], "history_total": 0, "history_s3_uri": None}


def test_long_history_keeps_first_best_and_last_evenly_spaced() -> None:
    series = rounds(1000, 340)  # 340 is no point of the even 49-entry grid over 0..999
    out = capped_history(series, "jobs/j.json")
    kept = [entry["iteration"] for entry in out["history"]]
    assert out["history_total"] == 1000 and out["history_s3_uri"] == "jobs/j.json"
    assert len(kept) == MAX_HISTORY and kept == sorted(set(kept))
    assert kept[0] == 0 and kept[-1] == 999 and 340 in kept
    gaps = {b - a for a, b in itertools.pairwise(kept) if 340 not in (a, b)}
    assert max(gaps) - min(gaps) <= 1  # evenly spaced apart from the best one


def test_best_follows_the_metric_direction() -> None:
    losses = [{"epoch": e, "val_loss": v} for e, v in [(1, 0.5), (2, 0.3), (3, 0.4)]]
    assert best_index(losses) == 1
    returns = [{"iteration": i, "episode_return_mean": r} for i, r in enumerate([10, 80, 40])]
    assert best_index(returns) == 1
    accuracy = [{"n_estimators": n, "validation_accuracy": a} for n, a in [(10, 0.9), (20, 0.95), (30, 0.93)]]
    assert best_index(accuracy) == 1
    assert best_index([{"n_clusters": 2}, {"n_clusters": 3}]) is None  # nothing to rank by
