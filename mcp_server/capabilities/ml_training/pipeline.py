"""The issue-driven pipeline: a training config becomes a trained, judged, registered and
announced model, with every stage's outputs in a run record (`pipelines/<run_id>.json`).

The pipeline drives the other capabilities only by calling their tools through the router by
name, exactly as a client would (`Services.call_tool`, on an event loop of the run's own): an
error result of a tool becomes a failed stage carrying its text. It runs as a light thread job
of kind `pipeline` (its own concurrency limit), and submits the training as ordinary training
jobs (`wait: false`) which it polls, so a pipeline never holds the slot its own training needs;
its evaluations are evaluation jobs (their own limit), started and polled the same way, so one
that outlives a call's wait still gives the run its full result.

Retry rule when no model passes the thresholds (at most `max_retries` more attempts), per algorithm:
- random_forest: twice the trees (`n_estimators`), twice `max_depth` when one is set
- xgboost: twice the boosting rounds, half the `learning_rate`
- neural_network: twice the `epochs`, half the `learning_rate`
- kmeans: twice `n_init` and `max_iter`; dbscan: `eps` x 1.5; tsne: twice `max_iter`
- ppo, dqn, a3c: twice `stop.max_iterations`
- pca: no rule (a retry would repeat the same fit), so it is not retried
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.from_thread
import mcp_types as types
from anyio.from_thread import BlockingPortal

from mcp_server.capabilities.base import ToolContext
from mcp_server.common.bundles import now_iso
from mcp_server.common.exceptions import CancelledError, MLOpsError
from mcp_server.common.jobs import FINAL_STATUSES, Job
from mcp_server.common.logger import get_logger
from mcp_server.common.s3_utils import json_bytes

_log = get_logger(__name__)

PIPELINES_PREFIX = "pipelines"  # server-owned: run records and idempotency keys
ARTIFACTS_PREFIX = "pipeline-artifacts"  # what the stages write through the tools (user-visible data)
STAGES = ("load", "validate", "preprocess", "split", "train", "evaluate", "judge", "register", "notify", "comment")

SUPERVISED = ("random_forest", "xgboost", "neural_network")
CLUSTERING = ("kmeans", "dbscan")
UNSUPERVISED = (*CLUSTERING, "pca", "tsne")
REINFORCEMENT = ("ppo", "dqn", "a3c")

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "classification": {"accuracy": 0.85, "f1": 0.80},
    "regression": {"r2": 0.80},
    "clustering": {"silhouette": 0.50},
}
PRIMARY_METRIC = {
    "classification": "accuracy",
    "regression": "r2",
    "clustering": "silhouette",
    "reinforcement": "episode_return_mean",
    "embedding": "kl_divergence",
}
LOWER_IS_BETTER = frozenset({"log_loss", "mse", "rmse", "mae", "mape", "davies_bouldin", "kl_divergence", "inertia"})

# Config hyperparameters that are top-level inputs of the trainer (the rest go in `hyperparameters`).
_TOP_LEVEL: dict[str, frozenset[str]] = {
    "random_forest": frozenset({"random_state", "validation_fraction", "feature_columns"}),
    "xgboost": frozenset({"random_state", "validation_fraction", "feature_columns", "backend"}),
    "neural_network": frozenset(
        {"random_state", "validation_fraction", "feature_columns", "framework", "backend", "hidden_layers"}
    ),
    "kmeans": frozenset({"n_clusters", "min_clusters", "max_clusters", "random_state", "columns"}),
    "dbscan": frozenset({"eps", "min_samples", "columns"}),
    "pca": frozenset({"n_components", "random_state", "columns"}),
    "tsne": frozenset({"n_components", "perplexity", "max_rows", "sample_if_larger", "random_state", "columns"}),
    **{a: frozenset({"stop", "num_workers", "random_state"}) for a in REINFORCEMENT},
}
_RL_MAX_ITERATIONS = 50
_RL_MAX_SECONDS = 600.0


class StageError(MLOpsError):
    """A stage could not complete; the run fails there with this text."""


def family_of(algorithm: str) -> str:
    if algorithm in SUPERVISED:
        return "supervised"
    return "unsupervised" if algorithm in UNSUPERVISED else "reinforcement"


def task_of(config: dict[str, Any]) -> str:
    """classification, regression, clustering, embedding (pca, tsne) or reinforcement."""
    algorithm = config["algorithms"][0]
    family = family_of(algorithm)
    if family == "supervised":
        return str(config["task_type"])
    if family == "reinforcement":
        return "reinforcement"
    return "clustering" if algorithm in CLUSTERING else "embedding"


def canonical_hash(config: dict[str, Any]) -> str:
    """sha256 of the config with sorted keys: the same request hashes the same however it was written."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def idempotency_key(repository: str | None, issue_number: int | None, config: dict[str, Any]) -> str | None:
    """`owner/name#issue:<config hash>`; None for a run that is not about an issue."""
    if not repository or issue_number is None:
        return None
    return f"{repository}#{issue_number}:{canonical_hash(config)}"


def thresholds_for(config: dict[str, Any], task: str) -> dict[str, float]:
    """The config's thresholds replace the defaults; RL defaults come from the environment later."""
    given = {k: float(v) for k, v in (config.get("thresholds") or {}).items()}
    return given or dict(DEFAULT_THRESHOLDS.get(task, {}))


def hyperparameters_for(config: dict[str, Any], algorithm: str) -> dict[str, Any]:
    """`hyperparameters` is `{algorithm: {...}}`, or one flat group when a single algorithm is named."""
    given = config.get("hyperparameters") or {}
    if any(name in given for name in (*SUPERVISED, *UNSUPERVISED, *REINFORCEMENT)):
        group = given.get(algorithm) or {}
    else:
        group = given if len(config["algorithms"]) == 1 else {}
    return dict(group) if isinstance(group, dict) else {}


def adjust(algorithm: str, hp: dict[str, Any]) -> dict[str, Any] | None:
    """The next attempt's hyperparameters by the rule of the module docstring; None: no rule."""
    new = dict(hp)
    if algorithm == "random_forest":
        new["n_estimators"] = min(5000, 2 * int(hp.get("n_estimators", 100)))
        if hp.get("max_depth"):
            new["max_depth"] = min(1000, 2 * int(hp["max_depth"]))
    elif algorithm == "xgboost":
        new["n_estimators"] = min(10_000, 2 * int(hp.get("n_estimators", 100)))
        new["learning_rate"] = float(hp.get("learning_rate", 0.3)) / 2
    elif algorithm == "neural_network":
        new["epochs"] = min(10_000, 2 * int(hp.get("epochs", 50)))
        new["learning_rate"] = float(hp.get("learning_rate", 1e-3)) / 2
    elif algorithm == "kmeans":
        new["n_init"] = min(100, 2 * int(hp.get("n_init", 10)))
        new["max_iter"] = min(100_000, 2 * int(hp.get("max_iter", 300)))
    elif algorithm == "dbscan":
        new["eps"] = round(float(hp.get("eps", 0.5)) * 1.5, 6)
    elif algorithm == "tsne":
        new["max_iter"] = min(10_000, 2 * int(hp.get("max_iter", 1000)))
    elif algorithm in REINFORCEMENT:
        stop = dict(hp.get("stop") or {})
        stop["max_iterations"] = 2 * int(stop.get("max_iterations", _RL_MAX_ITERATIONS))
        new["stop"] = stop
    else:
        return None
    return new


def judge(metrics: dict[str, Any], thresholds: dict[str, float]) -> tuple[bool, list[dict[str, Any]]]:
    """Every threshold met? Returns the verdict and one line per threshold."""
    checks = []
    for metric, threshold in thresholds.items():
        value = metrics.get(metric)
        lower = metric in LOWER_IS_BETTER
        ok = isinstance(value, int | float) and (value <= threshold if lower else value >= threshold)
        checks.append(
            {
                "metric": metric,
                "value": value,
                "threshold": threshold,
                "direction": "<=" if lower else ">=",
                "passed": ok,
            }
        )
    return all(c["passed"] for c in checks), checks


def result_text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def result_data(result: types.CallToolResult) -> dict[str, Any]:
    if isinstance(result.structured_content, dict):
        return result.structured_content
    text = result_text(result)
    start = text.find("{")  # the JSON follows a one-line summary
    data = json.loads(text[start:]) if start >= 0 else {}
    return data if isinstance(data, dict) else {}


def stage_plan(config: dict[str, Any], tool_names: list[str]) -> list[dict[str, Any]]:
    """Which tool each stage calls (the dry run's answer); `available` false: not on this server."""
    algorithms: list[str] = config["algorithms"]
    family = family_of(algorithms[0])
    task = task_of(config)
    tools: dict[str, list[str]] = {name: [] for name in STAGES}
    if family != "reinforcement":
        tools["load"] = ["load_dataset"]
        tools["validate"] = ["validate_data"]
        tools["preprocess"] = ["preprocess_supervised" if family == "supervised" else "preprocess_unsupervised"]
        tools["split"] = ["split_dataset"]
    else:
        tools["preprocess"] = ["preprocess_reinforcement"]
    tools["train"] = [f"train_{a}" for a in algorithms]
    evaluator = evaluate_tool(task)
    tools["evaluate"] = [evaluator] if evaluator else []
    tools["judge"] = ["generate_report"] if task != "reinforcement" else []
    tools["register"] = ["register_model", "update_model_status"]
    tools["notify"] = ["notify"] if config.get("notify") else []
    plan = []
    for name in STAGES:
        missing = [t for t in tools[name] if t not in tool_names]
        plan.append({"name": name, "tools": tools[name], "available": not missing, "missing_tools": missing})
    return plan


def evaluate_tool(task: str) -> str | None:
    return {
        "classification": "evaluate_classifier",
        "regression": "evaluate_regressor",
        "clustering": "evaluate_clustering",
        "reinforcement": "evaluate_reinforcement",
    }.get(task)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@dataclass
class Target:
    """The issue a run reports to, and the labels it sets there."""

    repository: str | None = None
    issue_number: int | None = None
    passed_label: str = "mlops:passed"
    failed_label: str = "mlops:failed"


@dataclass
class PipelineRun:
    """One run: its record (the tool's output shape) and the stage machinery. `execute` is the
    job's work; every change of the record is written to `pipelines/<run_id>.json`."""

    ctx: ToolContext  # a context of the job: no request, its tool calls run on the run's own loop
    run_id: str
    config: dict[str, Any]
    target: Target
    max_retries: int
    key: str | None
    record: dict[str, Any] = field(default_factory=dict)
    job: Job | None = None
    _portal: BlockingPortal | None = None
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.task = task_of(self.config)
        self.algorithms: list[str] = list(self.config["algorithms"])
        self.thresholds = thresholds_for(self.config, self.task)
        self.base = f"{ARTIFACTS_PREFIX}/{self.run_id}"
        self.record = {
            "run_id": self.run_id,
            "status": "queued",
            "passed": None,
            "stages": [{"name": n, "status": "pending", "seconds": None, "outputs": {}} for n in STAGES],
            "best_model_s3_uri": None,
            "registered": None,
            "report_s3_uri": None,
            "config": self.config,
            "thresholds": self.thresholds,
            "repository": self.target.repository,
            "issue_number": self.target.issue_number,
            "idempotency_key": self.key,
            "error": None,
            "warnings": [],
            "created_at": now_iso(),
            "finished_at": None,
        }

    # ------------------------------------------------------------------ record
    def stage(self, name: str) -> dict[str, Any]:
        return next(s for s in self.record["stages"] if s["name"] == name)

    def persist(self) -> None:
        loc = self.ctx.storage.resolve(f"{PIPELINES_PREFIX}/{self.run_id}.json", "run_id")
        self.ctx.storage.write_bytes(loc, json_bytes(self.record), "application/json")

    def skip(self, name: str, why: str) -> None:
        stage = self.stage(name)
        stage.update(status="skipped", outputs={"reason": why})

    @contextmanager
    def running(self, name: str) -> Iterator[dict[str, Any]]:
        """Run one stage: times it, records its outcome, and stops at a cancel before it starts."""
        self.check_cancelled()
        stage = self.stage(name)
        stage["status"] = "running"
        if self.job is not None:
            self.job.report(STAGES.index(name), len(STAGES), f"stage {name}")
        self.persist()
        started = time.monotonic()
        try:
            yield stage["outputs"]
        except CancelledError:
            stage["status"] = "cancelled"
            raise
        except MLOpsError as exc:
            stage["status"] = "failed"
            stage["error"] = str(exc)
            raise StageError(f"stage {name} failed: {exc}") from exc
        except Exception as exc:  # a bug: the stage still reads as failed, the run's handler logs it
            stage["status"] = "failed"
            stage["error"] = f"failed unexpectedly ({type(exc).__name__}); the details are in the server log"
            raise
        else:
            stage["status"] = "succeeded"
        finally:
            stage["seconds"] = round((stage["seconds"] or 0.0) + time.monotonic() - started, 3)
            self.persist()

    def check_cancelled(self) -> None:
        if self.job is not None and self.job.cancelled:
            raise CancelledError(f"pipeline run {self.run_id} was cancelled")

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call a tool by name as a client would; its error result raises with the tool's own text."""
        caller = self.ctx.services.call_tool
        if self._portal is None or caller is None:
            raise StageError("the pipeline runs only as a job of a server with a tool router")
        result = self._portal.call(caller, tool, arguments)
        if result.is_error:
            raise StageError(f"{tool}: {result_text(result)}")
        return result_data(result)

    # ------------------------------------------------------------------ the run
    def execute(self, job: Job) -> dict[str, Any]:
        # One event loop (in a thread of its own) for every tool call of the run.
        with anyio.from_thread.start_blocking_portal() as portal:
            self._portal = portal
            try:
                return self._execute(job)
            finally:
                self._portal = None

    def _execute(self, job: Job) -> dict[str, Any]:
        self.job = job
        self.record["status"] = "running"
        self.persist()
        try:
            self._stages()
        except CancelledError:
            self.record.update(status="cancelled", error="cancelled")
            self._skip_pending("cancelled")
            self._finish()
            raise
        except StageError as exc:
            self.record.update(status="failed", error=str(exc))
            self._report_failure(exc)
            self._finish()
            raise
        except Exception as exc:  # a bug here must still leave a finished record, not a run "running" forever
            _log.exception("pipeline run %s failed unexpectedly", self.run_id)
            self.record.update(status="failed", error=f"the pipeline failed unexpectedly ({type(exc).__name__})")
            self._skip_pending("the pipeline failed unexpectedly")
            self._finish()
            raise
        self.record["status"] = "succeeded"
        self._finish()
        return self.record

    def _finish(self) -> None:
        self.record["finished_at"] = now_iso()
        self.record["seconds"] = round(time.monotonic() - self._started, 3)
        self.persist()

    def _skip_pending(self, why: str) -> None:
        for stage in self.record["stages"]:
            if stage["status"] in ("pending", "running"):
                stage.update(status="skipped" if stage["status"] == "pending" else "cancelled")
                stage["outputs"].setdefault("reason", why)

    def _stages(self) -> None:
        family = family_of(self.algorithms[0])
        data = self._prepare_rl() if family == "reinforcement" else self._prepare_data(family)
        best = self._train_evaluate_judge(data)
        passed = bool(self.record["passed"])
        if passed and best is not None:
            self._register(best)
        else:
            self.skip("register", "no model passed the thresholds: nothing promoted")
        self._announce(passed, best)

    # ------------------------------------------------------------------ load .. split
    def _prepare_data(self, family: str) -> dict[str, Any]:
        dataset = self.config["dataset_s3_uri"]
        target = self.config.get("target_column")
        with self.running("load") as out:
            loaded = self.call("load_dataset", {"s3_uri": dataset, "preview_rows": 0})
            out.update(rows=loaded["rows"], columns=loaded["columns"], column_names=loaded["column_names"][:50])
        with self.running("validate") as out:
            args: dict[str, Any] = {"data_s3_uri": dataset}
            if target:
                args["required_columns"] = [target]
            checked = self.call("validate_data", args)
            out.update(is_valid=checked["is_valid"], checks=checked["checks"], errors=checked["errors"][:10])
            if not checked["is_valid"]:
                problems = "; ".join(e["message"] for e in checked["errors"][:5])
                raise StageError(f"the dataset is not valid: {problems}")
        with self.running("preprocess") as out:
            args = {"dataset_s3_uri": dataset, "output_s3_uri": f"{self.base}/processed.parquet"}
            if family == "supervised":
                args.update(target_column=target, task_type=self.config["task_type"])
                done = self.call("preprocess_supervised", args)
            else:
                done = self.call("preprocess_unsupervised", args)
            out.update(
                output_s3_uri=done["output_s3_uri"],
                pipeline_s3_uri=done.get("pipeline_s3_uri"),
                n_rows=done["n_rows"],
                n_features=done.get("n_features"),
                feature_names=done["feature_names"][:50],
            )
        with self.running("split") as out:
            args = {"dataset_s3_uri": done["output_s3_uri"], "output_prefix": f"{self.base}/split", "random_state": 42}
            if self.task == "classification":
                args["stratify_column"] = target
            if family != "supervised":
                args.update(train_ratio=0.8, validation_ratio=0.0, test_ratio=0.2)
            parts = self.call("split_dataset", args)
            keys = ("train_s3_uri", "validation_s3_uri", "test_s3_uri", "train_rows", "validation_rows", "test_rows")
            out.update({k: parts.get(k) for k in keys})
        return dict(out)

    def _prepare_rl(self) -> dict[str, Any]:
        self.skip("load", "reinforcement learning reads no dataset")
        self.skip("validate", "reinforcement learning reads no dataset")
        self.skip("split", "reinforcement learning reads no dataset")
        with self.running("preprocess") as out:
            env = self.call(
                "preprocess_reinforcement",
                {"environment": self.config["environment"], "output_s3_uri": f"{self.base}/env-spec.json"},
            )
            keys = ("env_spec_s3_uri", "environment", "reward_threshold", "max_episode_steps")
            out.update({k: env.get(k) for k in keys})
            if not self.thresholds:
                if env.get("reward_threshold") is None:
                    raise StageError(
                        f"{self.config['environment']} has no reward threshold: give thresholds, e.g. "
                        "thresholds: {episode_return_mean: 200}"
                    )
                self.thresholds = {"episode_return_mean": float(env["reward_threshold"])}
                self.record["thresholds"] = self.thresholds
        return dict(out)

    # ------------------------------------------------------------------ train / evaluate / judge
    def _train_args(self, algorithm: str, hp: dict[str, Any], data: dict[str, Any], attempt: int) -> dict[str, Any]:
        top = _TOP_LEVEL.get(algorithm, frozenset())
        args: dict[str, Any] = {k: v for k, v in hp.items() if k in top}
        nested = {k: v for k, v in hp.items() if k not in top}
        if nested:
            args["hyperparameters"] = nested
        args.update(model_output_s3_uri=f"{self.base}/models/{algorithm}-attempt{attempt}")
        if algorithm in REINFORCEMENT:
            args["env_spec_s3_uri"] = data["env_spec_s3_uri"]
            stop = dict(args.get("stop") or {})
            stop.setdefault("max_iterations", _RL_MAX_ITERATIONS)
            stop.setdefault("max_seconds", _RL_MAX_SECONDS)  # the trainers' own default limit, kept
            target = self.thresholds.get("episode_return_mean")
            if target is not None:
                stop.setdefault("target_return", target)
            args["stop"] = stop
            return args
        args["train_data_s3_uri"] = data["train_s3_uri"]
        if algorithm in SUPERVISED:
            args.update(target_column=self.config["target_column"], task_type=self.config["task_type"])
            if data.get("validation_s3_uri") and data.get("validation_rows"):
                args["validation_data_s3_uri"] = data["validation_s3_uri"]
        if "random_state" in top and algorithm != "dbscan":
            args.setdefault("random_state", 0)  # repeatable runs: the same config trains the same model
        return args

    def _run_job(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Start a job tool (a trainer, an evaluation) with `wait: false` and poll it to its end; a
        cancel of the run cancels it. Returns its get_training_metrics record (`result` in full)."""
        started = self.call(tool, {**args, "wait": False})
        job_id = started["job_id"]
        ours = self.ctx.jobs.get(job_id)
        status = started.get("status")
        while status not in FINAL_STATUSES:
            if self.job is not None and self.job.cancelled:
                self.call("cancel_training_job", {"job_id": job_id, "wait_seconds": 30})
                raise CancelledError(f"pipeline run {self.run_id} was cancelled during {tool}")
            if ours is not None:  # in this process: wait on it without polling storage
                status = ours.status if ours.done_event.wait(0.2) else None
            else:
                time.sleep(0.5)
                status = self.call("get_training_metrics", {"job_id": job_id})["status"]
        final = self.call("get_training_metrics", {"job_id": job_id})
        if final["status"] != "succeeded":
            raise StageError(f"{tool} job {job_id} {final['status']}: {final.get('error') or 'no detail'}")
        return final

    def _evaluate(
        self, model_uri: str, data: dict[str, Any], train_metrics: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """The metrics the model is judged on, and the evaluation job that measured them (None:
        judged on its training metrics)."""
        tool = evaluate_tool(self.task)
        if self.task == "embedding" or tool is None:
            return _floats(train_metrics), None  # pca, t-SNE: judged on what training measured
        args: dict[str, Any] = {"model_s3_uri": model_uri}
        if self.task == "reinforcement":
            args["env_spec_s3_uri"] = data["env_spec_s3_uri"]
        else:
            args["test_data_s3_uri"] = data["test_s3_uri"]
        evaluated = self._run_job(tool, args)
        return _floats(evaluated["metrics"]), evaluated["job_id"]

    def _train_evaluate_judge(self, data: dict[str, Any]) -> dict[str, Any] | None:
        hps = {a: hyperparameters_for(self.config, a) for a in self.algorithms}
        attempts: list[dict[str, Any]] = []
        self.stage("train")["attempts"] = attempts
        best: dict[str, Any] | None = None
        for attempt in range(1, self.max_retries + 2):
            models: list[dict[str, Any]] = []
            with self.running("train") as out:
                for algorithm in self.algorithms:
                    tool = f"train_{algorithm}"
                    if tool not in self.ctx.services.tool_names:
                        raise StageError(
                            f"{tool} is not available on this server ({algorithm} training is not installed or "
                            "its capability is not enabled)"
                        )
                    trained = self._run_job(tool, self._train_args(algorithm, hps[algorithm], data, attempt))
                    models.append(
                        {
                            "algorithm": algorithm,
                            "model_s3_uri": trained["model_s3_uri"],
                            "job_id": trained["job_id"],
                            "train_metrics": trained.get("metrics") or {},
                        }
                    )
                out.update(
                    attempt=attempt, models=[{k: m[k] for k in ("algorithm", "model_s3_uri", "job_id")} for m in models]
                )
            with self.running("evaluate") as out:
                for model in models:
                    metrics = model["train_metrics"]
                    flat = metrics.get("train", metrics) if isinstance(metrics.get("train"), dict) else metrics
                    model["metrics"], model["evaluation_job_id"] = self._evaluate(model["model_s3_uri"], data, flat)
                out.update(
                    attempt=attempt,
                    metrics={m["algorithm"]: m["metrics"] for m in models},
                    job_ids={m["algorithm"]: m["evaluation_job_id"] for m in models if m["evaluation_job_id"]},
                )
            with self.running("judge") as out:
                for model in models:
                    model["passed"], model["checks"] = judge(model["metrics"], self.thresholds)
                best = self._best(models)
                passed = any(m["passed"] for m in models)
                attempts.append(
                    {
                        "attempt": attempt,
                        "hyperparameters": {a: hps[a] for a in self.algorithms},
                        "metrics": {m["algorithm"]: m["metrics"] for m in models},
                        "passed": passed,
                        "best_algorithm": best["algorithm"] if best else None,
                    }
                )
                out.update(
                    attempt=attempt,
                    passed=passed,
                    thresholds=self.thresholds,
                    best_algorithm=best["algorithm"] if best else None,
                    checks={m["algorithm"]: m["checks"] for m in models},
                )
                self.record.update(passed=passed, best_model_s3_uri=best["model_s3_uri"] if best else None)
                if passed or attempt > self.max_retries:
                    self._report(best, data, out)
            if passed:
                break
            adjusted = {a: adjust(a, hps[a]) for a in self.algorithms}
            if all(v is None for v in adjusted.values()):
                self.record["warnings"].append("no retry rule for these algorithms: not retried")
                break
            hps = {a: adjusted.get(a) or hps[a] for a in self.algorithms}
        return best

    def _best(self, models: list[dict[str, Any]]) -> dict[str, Any] | None:
        metric = PRIMARY_METRIC[self.task]
        lower = metric in LOWER_IS_BETTER
        pool = [m for m in models if m["passed"]] or models

        def score(model: dict[str, Any]) -> float:
            value = model["metrics"].get(metric)
            if not isinstance(value, int | float):
                return float("-inf")
            return -value if lower else value

        return max(pool, key=score) if pool else None

    def _report(self, best: dict[str, Any] | None, data: dict[str, Any], out: dict[str, Any]) -> None:
        if best is None or self.task == "reinforcement" or "generate_report" not in self.ctx.services.tool_names:
            return
        args: dict[str, Any] = {
            "model_s3_uri": best["model_s3_uri"],
            "output_s3_uri": f"{self.base}/report.html",
            "test_data_s3_uri": data["test_s3_uri"],
            "title": f"Pipeline run {self.run_id}: {best['algorithm']}",
        }
        if self.task != "embedding":
            args["thresholds"] = self.thresholds
        try:
            report = self._run_job("generate_report", args)["result"]
        except StageError as exc:  # a report is a courtesy: its failure does not fail the verdict
            self.record["warnings"].append(f"no report: {exc}")
            return
        out["report_s3_uri"] = report["report_s3_uri"]
        self.record["report_s3_uri"] = report["report_s3_uri"]

    # ------------------------------------------------------------------ register / notify / comment
    def model_name(self) -> str:
        if self.config.get("model_name"):
            return str(self.config["model_name"])
        if self.target.repository and self.target.issue_number is not None:
            return f"{self.target.repository.split('/')[1]}-issue-{self.target.issue_number}"[:128]
        return f"pipeline-{self.algorithms[0]}".replace("_", "-")

    def _register(self, best: dict[str, Any]) -> None:
        if self.job is not None:
            self.job.begin_publish()  # from here the run completes: a cancel must not leave half a promotion
        with self.running("register") as out:
            tags = {"pipeline_run": self.run_id, "config_sha256": canonical_hash(self.config)[:16]}
            if self.target.repository:
                tags["issue"] = f"{self.target.repository}#{self.target.issue_number}"
            args: dict[str, Any] = {
                "model_name": self.model_name(),
                "model_s3_uri": best["model_s3_uri"],
                "metrics": best["metrics"],
                "tags": tags,
                "description": f"{best['algorithm']} trained by pipeline run {self.run_id}",
            }
            if self.config.get("dataset_s3_uri"):
                args["dataset_s3_uri"] = self.config["dataset_s3_uri"]
            registered = self.call("register_model", args)
            promoted = self.call(
                "update_model_status",
                {
                    "model_name": registered["model_name"],
                    "version": registered["version"],
                    "status": "production",
                    "reason": f"pipeline run {self.run_id} passed its thresholds",
                },
            )
            demoted = promoted.get("demoted")
            out.update(
                model_name=registered["model_name"],
                version=registered["version"],
                status=promoted["status"],
                archived_version=demoted["version"] if demoted else None,
            )
            self.record["registered"] = {
                "model_name": registered["model_name"],
                "version": registered["version"],
                "status": promoted["status"],
            }

    def _announce(self, passed: bool, best: dict[str, Any] | None) -> None:
        channels = list(self.config.get("notify") or [])
        if not channels:
            self.skip("notify", "the config names no channels")
        else:
            variables: dict[str, Any] = {"run_id": self.run_id, "passed": passed}
            if best is not None:
                variables.update(best_model_s3_uri=best["model_s3_uri"], metrics=best["metrics"])
            if self.record["registered"]:
                variables.update(
                    model_name=self.record["registered"]["model_name"], version=self.record["registered"]["version"]
                )
            self._notify(channels, "pipeline_completed", variables)
        if self.target.repository and self.target.issue_number is not None:
            self._comment(passed, self._comment_body(passed, best))
        else:
            self.skip("comment", "the run is not about an issue")

    def _notify(self, channels: list[str], template: str, variables: dict[str, Any]) -> None:
        args: dict[str, Any] = {"channels": channels, "template": template, "variables": variables}
        if self.config.get("email_to"):
            args["to"] = self.config["email_to"]
        try:
            with self.running("notify") as out:
                sent = self.call("notify", args)
                out.update(results=sent["results"], sent_count=sent["sent_count"])
        except StageError as exc:  # an announcement failing does not undo a completed run
            self.record["warnings"].append(str(exc))

    def _comment(self, passed: bool, body: str) -> None:
        repo, number = self.target.repository, self.target.issue_number
        label = self.target.passed_label if passed else self.target.failed_label
        other = self.target.failed_label if passed else self.target.passed_label
        try:
            with self.running("comment") as out:
                comment = self.call("add_issue_comment", {"repository": repo, "issue_number": number, "body": body})
                labels = self.call("add_labels", {"repository": repo, "issue_number": number, "labels": [label]})
                if other in labels["labels"]:
                    labels = self.call("remove_label", {"repository": repo, "issue_number": number, "label": other})
                out.update(comment_id=comment["comment_id"], html_url=comment.get("html_url"), labels=labels["labels"])
        except StageError as exc:
            self.record["warnings"].append(str(exc))

    def _comment_body(self, passed: bool, best: dict[str, Any] | None) -> str:
        verdict = "passed" if passed else "did not pass"
        lines = [f"## MLOps pipeline run `{self.run_id}`", "", f"**Verdict:** the best model {verdict} its thresholds."]
        attempts = self.stage("train").get("attempts") or []
        if attempts:
            last = attempts[-1]
            names = sorted({k for m in last["metrics"].values() for k in m})[:8]
            lines += ["", f"Attempt {last['attempt']} of {len(attempts)} (test metrics):", ""]
            lines.append("| algorithm | " + " | ".join(names) + " |")
            lines.append("|---" * (len(names) + 1) + "|")
            for algorithm, metrics in last["metrics"].items():
                cells = [f"{metrics[n]:.4f}" if isinstance(metrics.get(n), float) else "" for n in names]
                lines.append(f"| {algorithm} | " + " | ".join(cells) + " |")
        if best is not None:
            _, checks = judge(best["metrics"], self.thresholds)
            lines += [
                "",
                f"Thresholds ({best['algorithm']}):",
                "",
                "| metric | value | threshold | ok |",
                "|---|---|---|---|",
            ]
            for c in checks:
                value = f"{c['value']:.4f}" if isinstance(c["value"], float) else str(c["value"])
                ok = "yes" if c["passed"] else "no"
                lines.append(f"| {c['metric']} | {value} | {c['direction']} {c['threshold']} | {ok} |")
        if self.record["report_s3_uri"]:
            lines += ["", f"Report: `{self.record['report_s3_uri']}`"]
        registered = self.record["registered"]
        if registered:
            lines += [
                "",
                f"Registered `{registered['model_name']}` version {registered['version']} ({registered['status']}).",
            ]
        else:
            lines += ["", "Nothing was registered or promoted."]
        return "\n".join(lines)

    def _report_failure(self, exc: StageError) -> None:
        """A run that could not complete still says so: notification and issue comment, best effort."""
        failed = next((s["name"] for s in self.record["stages"] if s["status"] == "failed"), "unknown")
        self._skip_pending(f"stage {failed} failed")
        channels = list(self.config.get("notify") or [])
        stage = self.stage("notify")
        if channels and stage["status"] == "skipped":
            stage["status"] = "pending"
            self._notify(
                channels, "pipeline_failed", {"run_id": self.run_id, "stage": failed, "error": str(exc)[:1000]}
            )
        if (
            self.target.repository
            and self.target.issue_number is not None
            and self.stage("comment")["status"] == "skipped"
        ):
            self.stage("comment")["status"] = "pending"
            body = f"## MLOps pipeline run `{self.run_id}` failed\n\nStage `{failed}`: {str(exc)[:3000]}"
            self._comment(False, body)
