"""The pipeline's rules on their own: retry adjustments per algorithm, the judge, default
thresholds, hyperparameter groups and the idempotency key."""

from __future__ import annotations

import pytest

from mcp_server.capabilities.ml_training.pipeline import (
    adjust,
    canonical_hash,
    hyperparameters_for,
    idempotency_key,
    judge,
    stage_plan,
    thresholds_for,
)


@pytest.mark.parametrize(
    ("algorithm", "given", "expected"),
    [
        ("random_forest", {}, {"n_estimators": 200}),
        ("random_forest", {"n_estimators": 50, "max_depth": 3}, {"n_estimators": 100, "max_depth": 6}),
        ("xgboost", {"learning_rate": 0.2}, {"n_estimators": 200, "learning_rate": 0.1}),
        ("neural_network", {"epochs": 10}, {"epochs": 20, "learning_rate": 0.0005}),
        ("kmeans", {}, {"n_init": 20, "max_iter": 600}),
        ("dbscan", {"eps": 0.2}, {"eps": 0.3}),
        ("tsne", {}, {"max_iter": 2000}),
        ("ppo", {"stop": {"max_iterations": 5}}, {"stop": {"max_iterations": 10}}),
    ],
)
def test_retry_rule_per_algorithm(algorithm: str, given: dict[str, object], expected: dict[str, object]) -> None:
    assert adjust(algorithm, given) == expected


def test_pca_has_no_retry_rule() -> None:
    assert adjust("pca", {"n_components": 0.9}) is None


def test_retry_rule_stays_within_the_trainers_limits() -> None:
    assert adjust("random_forest", {"n_estimators": 4000}) == {"n_estimators": 5000}


def test_judge_knows_lower_is_better_metrics_and_missing_ones() -> None:
    passed, checks = judge({"accuracy": 0.9, "log_loss": 0.2}, {"accuracy": 0.85, "log_loss": 0.3})
    assert passed and [c["direction"] for c in checks] == [">=", "<="]
    passed, checks = judge({"accuracy": 0.9}, {"f1": 0.8})
    assert not passed and checks[0]["value"] is None


def test_default_thresholds_per_task_and_given_ones_replace_them() -> None:
    assert thresholds_for({}, "classification") == {"accuracy": 0.85, "f1": 0.80}
    assert thresholds_for({}, "regression") == {"r2": 0.80}
    assert thresholds_for({}, "clustering") == {"silhouette": 0.50}
    assert thresholds_for({}, "reinforcement") == {}  # from the environment, at run time
    assert thresholds_for({"thresholds": {"f1": 0.7}}, "classification") == {"f1": 0.7}


def test_hyperparameters_per_algorithm_or_one_flat_group() -> None:
    per = {"algorithms": ["random_forest", "xgboost"], "hyperparameters": {"xgboost": {"max_depth": 3}}}
    assert hyperparameters_for(per, "xgboost") == {"max_depth": 3}
    assert hyperparameters_for(per, "random_forest") == {}
    flat = {"algorithms": ["xgboost"], "hyperparameters": {"max_depth": 3}}
    assert hyperparameters_for(flat, "xgboost") == {"max_depth": 3}


def test_idempotency_key_is_the_issue_and_the_canonical_config() -> None:
    a = {"algorithms": ["xgboost"], "target_column": "y"}
    b = {"target_column": "y", "algorithms": ["xgboost"]}
    assert canonical_hash(a) == canonical_hash(b)
    assert idempotency_key("o/r", 3, a) == f"o/r#3:{canonical_hash(a)}"
    assert idempotency_key(None, None, a) is None


def test_plan_marks_tools_this_server_lacks() -> None:
    config = {"algorithms": ["ppo"], "environment": "CartPole-v1"}
    plan = {s["name"]: s for s in stage_plan(config, ["preprocess_reinforcement", "register_model"])}
    assert plan["train"]["missing_tools"] == ["train_ppo"]
    assert plan["load"]["tools"] == [] and plan["preprocess"]["available"]
