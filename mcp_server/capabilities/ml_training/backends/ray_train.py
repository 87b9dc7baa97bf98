"""`backend: "ray"` for train_xgboost and train_neural_network: Ray Train (the Train V2 API of Ray
2.60) on the cluster of `RAY_ADDRESS`, or on the server's own Ray.

Where each part runs:
- `prepare` (the server, before any job exists): checks the call (Parquet inputs, columns and
  lineage from the Parquet footers, num_workers x resources_per_worker against the cluster), and
  refuses a local storage URI when the cluster is on another machine, before connecting to it.
- the fit (a worker process of the server: the Ray driver). It joins the cluster, builds Ray Data
  datasets over the Parquet files (paths and pyarrow filesystem from `S3Utils.arrow_path`; the
  cluster's tasks read them and stream them into the train workers, never through the server),
  runs an `XGBoostTrainer` or a `TorchTrainer`, forwards each round / epoch from a small mailbox
  actor to the job (Train's own reports are polled by its controller every couple of seconds,
  which would make a report per round cost seconds), and turns the final checkpoint into the same
  bundle as local training. Metrics that need data use bounded samples read through Ray Data.
- the train workers (Ray actors on the cluster): each holds its shard. XGBoost trains through its
  collective (Ray Train sets it up) and its `RayTrainReportCallback` writes the model as UBJSON;
  the network trains with DistributedDataParallel and rank 0 writes safetensors weights plus
  architecture.json. Checkpoints go to a server-owned scratch folder next to the training data
  (`.mlops-tmp/`, which no caller can address) and are removed after the bundle is written.

Cancel: the driver sees the job's cancel within `_POLL_SECONDS`, raises the mailbox's flag (train
workers stop at their next round or epoch) and ends; the driver's process exits, and Ray ends
what that job owned: the Train controller, its worker group and its placement group.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcp_server.capabilities.ml_training.data import (
    _CLASSIFICATION_MAX_DISTINCT,
    TRAIN_SCORE_MAX_ROWS,
    SupervisedData,
    _features_for,
    importance_dict,
    json_value,
    load_preprocessor,
    resolve_seed,
    score,
    supervised_metadata,
)
from mcp_server.capabilities.ml_training.rl.ray_runtime import RayHandle, connect_driver, ensure_ray
from mcp_server.capabilities.ml_training.schemas import (
    NeuralNetworkHyperparameters,
    SupervisedInput,
    TrainNeuralNetworkInput,
    TrainXGBoostInput,
    XGBoostHyperparameters,
)
from mcp_server.capabilities.ml_training.tools.common import publish_bundle
from mcp_server.capabilities.ml_training.tools.supervised import supervised_result
from mcp_server.common.exceptions import BadFormatError, CancelledError, InvalidInputError, MLOpsError
from mcp_server.common.inference import feature_matrix
from mcp_server.common.jobs import Job
from mcp_server.common.s3_utils import LINEAGE_KEY, Location, S3Utils, data_format_of, sha256_file

DEFAULT_WORKERS = 2
DEFAULT_RESOURCES = {"CPU": 1.0}
_POLL_SECONDS = 0.2
_VALIDATION_SCORE_MAX_ROWS = 4 * TRAIN_SCORE_MAX_ROWS  # validation metrics: all rows up to this
_TRAIN_CURVE_ROWS = 20_000  # as local XGBoost: the per-round train metric on a sample (split over workers)
_TASK_SAMPLE_ROWS = 10_000  # an unstated task type is inferred from this many target values
_BATCH_ROWS = 65_536  # rows per Ray Data batch when a worker loads its shard
_HEALTH_CHECK_SECONDS = "0.5"  # Train V2's controller poll (default 2 s): how soon the end is seen
_ERROR_TAG = "mlops-error:"  # an MLOpsError raised in a train worker crosses Ray as this JSON text


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class RayTarget:
    """The cluster a driver joins (its handle holds the auth settings, never shown)."""

    handle: RayHandle
    ship_package: bool = True  # send this package to the workers (runtime_env py_modules)

    @property
    def address(self) -> str:
        return self.handle.address


@dataclass(frozen=True)
class Source:
    """A Parquet input as the cluster reads it."""

    loc: Location
    path: str
    filesystem: Any
    num_rows: int


@dataclass(frozen=True)
class RayPlan:
    """Everything the driver needs, checked before the job."""

    target: RayTarget
    num_workers: int
    resources: dict[str, float]
    train: Source
    validation: Source | None
    validation_fraction: float | None
    task_type: str | None
    features: list[str]
    feature_dtypes: dict[str, str]
    lineage: dict[str, Any]
    bundle_preprocessor: bool  # the features are the lineage's processed columns: bundle its pipeline
    raw_validation: bool  # the validation file holds raw columns, run through that pipeline
    checkpoints: tuple[str, Any]
    seed: int
    hp: Any


def _remote(address: str | None) -> bool:
    """Whether RAY_ADDRESS names another machine (its workers cannot see this server's disk)."""
    if not address or address in ("auto", "local"):
        return False
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return True
    if ip.is_loopback:
        return False
    try:
        mine = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        mine = set()
    return str(ip) not in mine


def _resources(params: Any) -> tuple[int, dict[str, float]]:
    workers = params.num_workers or DEFAULT_WORKERS
    resources = dict(params.resources_per_worker or DEFAULT_RESOURCES)
    for name, amount in resources.items():
        if not name.strip() or not math.isfinite(amount) or amount < 0:
            raise InvalidInputError(
                f"resources_per_worker[{name!r}]={amount} is not a resource amount",
                field="resources_per_worker",
                hint='Give non-negative amounts of the cluster\'s resources, e.g. {"CPU": 1}.',
            )
    if not any(amount > 0 for amount in resources.values()):
        raise InvalidInputError(
            "resources_per_worker reserves nothing, so Ray could pack any number of workers on one CPU",
            field="resources_per_worker",
            hint='Reserve some CPU, e.g. {"CPU": 0.5}.',
        )
    return workers, resources


def _check_capacity(workers: int, resources: dict[str, float], available: dict[str, float]) -> None:
    """Train workers are gang-scheduled: a group that cannot fit would wait forever."""
    for name, amount in resources.items():
        need, have = workers * amount, float(available.get(name, 0.0))
        if need > have + 1e-9:
            raise InvalidInputError(
                f"num_workers={workers} x resources_per_worker {name}={amount:g} needs {need:g} {name}; "
                f"the Ray cluster has {have:g}",
                field="num_workers",
                hint=f"Use fewer workers or a smaller share each (at most {have:g} {name} in all); "
                "leave some CPU free for Ray Data's read tasks.",
            )


def _source(storage: S3Utils, uri: str, field_name: str, remote: bool) -> tuple[Source, Any]:
    """The Parquet input at `uri` and its Arrow schema (read from the footer only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    loc = storage.resolve(uri, field_name)
    if data_format_of(loc, None, field_name) != "parquet":
        raise InvalidInputError(
            f"backend ray reads Parquet; {loc.uri} is not a Parquet file",
            field=field_name,
            hint="Convert it first (save_processed_data with file_format parquet), or train with backend local.",
        )
    if remote and loc.scheme == "local":
        raise InvalidInputError(
            f"{loc.uri} is on this server's disk, which the workers of the Ray cluster at RAY_ADDRESS "
            "(another machine) cannot read",
            field=field_name,
            hint="Put the data on S3 (s3://...) where the cluster can read it, or use a Ray cluster on this machine.",
        )
    path, filesystem = storage.arrow_path(loc)
    try:
        parquet = pq.ParquetFile(path, filesystem=filesystem)
    except FileNotFoundError:
        raise InvalidInputError(f"{loc.uri} does not exist", field=field_name) from None
    except (OSError, pa.ArrowException) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise BadFormatError(f"cannot read {loc.uri} as parquet: {detail}", field=field_name) from None
    rows = parquet.metadata.num_rows
    if rows == 0:
        raise InvalidInputError(f"{loc.uri} has no rows", field=field_name, hint="Pass a table with data.")
    return Source(loc, path, filesystem, rows), parquet.schema_arrow


def _lineage(schema: Any) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(LINEAGE_KEY)
    return dict(json.loads(raw)) if raw else {}


def _numeric(schema: Any, columns: list[str], field_name: str) -> None:
    import pyarrow as pa

    bad = [
        c
        for c in columns
        if not (pa.types.is_integer(t := schema.field(c).type) or pa.types.is_floating(t) or pa.types.is_boolean(t))
    ]
    if bad:
        raise InvalidInputError(
            f"non-numeric feature columns {bad[:10]}",
            field=field_name,
            hint="Encode them first (preprocess_supervised with encode_categorical), or pass feature_columns.",
        )


def _connect_target(storage: S3Utils) -> tuple[RayTarget, dict[str, float]]:
    """Join RAY_ADDRESS, or start the server's own Ray (once): the address a driver process
    needs, and the cluster's resources."""
    import ray

    handle = ensure_ray(storage.config)  # carries the auth settings the driver process needs
    # Shipping the package costs every new Ray worker a runtime-env set-up (~10 s a call on a
    # busy machine); the server's own Ray inherits its interpreter and environment, so it can
    # import the package when that comes from site-packages or PYTHONPATH. A cluster joined
    # through RAY_ADDRESS may not have it: always shipped there.
    ship = not (handle.started_here and _importable_by_children())
    return RayTarget(handle, ship), dict(ray.cluster_resources())


def _importable_by_children() -> bool:
    """Whether a process started from this one's environment imports this package (not only
    through the current directory or the script's folder, which a Ray worker does not share)."""
    import site
    import sysconfig

    import mcp_server

    home = os.path.realpath(Path(mcp_server.__file__).parent.parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    return any(os.path.realpath(p) == home for p in paths)


def prepare(storage: S3Utils, params: SupervisedInput, model_loc: Location) -> tuple[RayPlan]:
    """Before the job: everything that can be checked without reading the data."""
    neural = isinstance(params, TrainNeuralNetworkInput)
    if isinstance(params, TrainNeuralNetworkInput) and params.framework != "pytorch":
        raise InvalidInputError(
            "backend ray trains the pytorch network only", field="framework", hint="Use framework pytorch."
        )
    if params.validation_data_s3_uri and params.validation_fraction:
        raise InvalidInputError(
            "pass either validation_data_s3_uri or validation_fraction, not both", field="validation_fraction"
        )
    if neural:
        from mcp_server.capabilities.ml_training.tools.neural import effective_hyperparameters

        hp: Any = effective_hyperparameters(params)  # type: ignore[arg-type]
    else:
        hp = getattr(params, "hyperparameters", None) or XGBoostHyperparameters()
    workers, resources = _resources(params)
    remote = _remote(storage.config.ray_address)
    train, schema = _source(storage, params.train_data_s3_uri, "train_data_s3_uri", remote)
    columns = [str(c) for c in schema.names]
    target = params.target_column
    if target not in columns:
        from mcp_server.common.datasets import require_columns

        require_columns(pd.DataFrame(columns=columns), [target], "target_column")
    lineage = _lineage(schema)
    empty = schema.empty_table().to_pandas()
    empty.columns = columns
    features, from_lineage = _features_for(empty, target, params.feature_columns, lineage)
    if not features:
        raise InvalidInputError("the data has no feature columns besides the target", field="train_data_s3_uri")
    _numeric(schema, features, "feature_columns" if params.feature_columns else "train_data_s3_uri")
    task = params.task_type or lineage.get("task_type")
    task = task if task in ("classification", "regression") else None
    target_type = schema.field(target).type
    if task == "regression" and not pd.api.types.is_numeric_dtype(empty[target].dtype):
        raise InvalidInputError(
            f"the target column {target!r} is not numeric ({target_type}), so it cannot be regressed",
            field="task_type",
            hint="Use task_type=classification, or a numeric target.",
        )
    bundle_pre = from_lineage and bool(lineage.get("pipeline_s3_uri"))
    validation = None
    raw_validation = False
    if params.validation_data_s3_uri:
        validation, val_schema = _source(storage, params.validation_data_s3_uri, "validation_data_s3_uri", remote)
        val_columns = set(val_schema.names)
        raw = [str(c) for c in lineage.get("raw_feature_columns") or []]
        raw_validation = not set(features) <= val_columns and bundle_pre and bool(raw) and set(raw) <= val_columns
        missing = [c for c in [*features, target] if c not in val_columns and not (raw_validation and c != target)]
        if missing:
            raise InvalidInputError(
                f"the validation data lacks columns the training uses: {missing[:10]}",
                field="validation_data_s3_uri",
                hint="Preprocess it with the same pipeline as the training data.",
            )
    ray_target, available = _connect_target(storage)
    _check_capacity(workers, resources, available)
    return (
        RayPlan(
            target=ray_target,
            num_workers=workers,
            resources=resources,
            train=train,
            validation=validation,
            validation_fraction=params.validation_fraction,
            task_type=task,
            features=features,
            feature_dtypes={c: str(empty[c].dtype) for c in features},
            lineage=lineage,
            bundle_preprocessor=bundle_pre,
            raw_validation=raw_validation,
            checkpoints=storage.arrow_path(train.loc, scratch="ray-train"),
            seed=resolve_seed(params.random_state),
            hp=hp,
        ),
    )


# ---------------------------------------------------------------------------- driver side
def _init_ray(target: RayTarget) -> Any:
    """Join the cluster from this (worker) process, shipping this package to the train workers."""
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", _HEALTH_CHECK_SECONDS)
    import logging

    import ray

    import mcp_server

    if not ray.is_initialized():
        # The workers import this package (the train loops, the feature checks), installed or not.
        package = {"py_modules": [str(Path(mcp_server.__file__).parent)], "excludes": ["__pycache__"]}
        connect_driver(target.handle, package if target.ship_package else None)
    for name in ("ray", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return ray


def _mailbox(ray: Any) -> Any:
    """A small actor between the train workers and the driver: records in, a cancel flag out."""

    @ray.remote(num_cpus=0)
    class Mailbox:
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []
            self.cancelled = False

        def put(self, record: dict[str, Any]) -> None:
            self.records.append(record)

        def take(self) -> list[dict[str, Any]]:
            records, self.records = self.records, []
            return records

        def cancel(self) -> None:
            self.cancelled = True

        def is_cancelled(self) -> bool:
            return self.cancelled

    return Mailbox.remote()  # type: ignore[attr-defined]


def _hash_split(batch: pd.DataFrame, fraction: float, seed: int, validation: bool) -> pd.DataFrame:
    """A held-out fraction chosen by a seeded hash of each row's values: the same rows in every
    pass and on every worker, with no shuffle and nothing materialised."""
    hashes = pd.util.hash_pandas_object(batch, index=False, hash_key=f"{seed:016d}"[-16:]).to_numpy()
    chosen = (hashes % 1_000_000) < round(fraction * 1_000_000)
    return batch[chosen if validation else ~chosen]


def _datasets(ray: Any, plan: RayPlan, target: str) -> dict[str, Any]:
    train_columns = [*plan.features, target]
    train = ray.data.read_parquet(plan.train.path, filesystem=plan.train.filesystem, columns=train_columns)
    out = {"train": train}
    if plan.validation is not None:
        raw = [str(c) for c in plan.lineage.get("raw_feature_columns") or []]
        columns = [*raw, target] if plan.raw_validation else train_columns
        out["validation"] = ray.data.read_parquet(
            plan.validation.path, filesystem=plan.validation.filesystem, columns=columns
        )
    elif plan.validation_fraction:
        for name, held_out in (("train", False), ("validation", True)):
            out[name] = train.map_batches(
                _hash_split,
                batch_format="pandas",
                fn_kwargs={"fraction": plan.validation_fraction, "seed": plan.seed, "validation": held_out},
            )
    return out


@dataclass
class Labels:
    """What the data says about the target: the task, and the classes (sorted, as locally)."""

    task_type: str
    classes: list[Any] | None = None
    class_values: np.ndarray | None = None
    target_mean: float | None = None
    target_std: float | None = None


def _target_stats(batch: pd.DataFrame, target: str, cap: int) -> pd.DataFrame:
    """One batch's facts about the target (Ray Data tasks run this): rows, missing values, sums,
    and its distinct values while there are at most `cap` of them."""
    y = batch[target]
    present = y.dropna()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    values = present.to_numpy(np.float64) if numeric else None
    distinct = present.unique()
    return pd.DataFrame(
        {
            "rows": [len(y)],
            "missing": [int(y.isna().sum())],
            "numeric": [numeric],
            "integral": [bool(values is None or np.all(np.mod(values, 1) == 0))],
            "sum": [float(values.sum()) if values is not None else 0.0],
            "sumsq": [float((values**2).sum()) if values is not None else 0.0],
            "distinct": [json.dumps([json_value(v) for v in distinct]) if len(distinct) <= cap else ""],
        }
    )


def _facts(dataset: Any, target: str, cap: int) -> dict[str, Any]:
    """The target's facts over a whole dataset in one streamed pass (one small row per batch back)."""
    rows = dataset.select_columns([target]).map_batches(
        _target_stats, batch_format="pandas", fn_kwargs={"target": target, "cap": cap}
    )
    parts = rows.to_pandas()
    union: set[Any] = set()
    overflow = False
    for text in parts["distinct"]:
        overflow = overflow or not text
        union.update(json.loads(text) if text else [])
    n = int(parts["rows"].sum())
    mean = float(parts["sum"].sum()) / max(1, n)
    variance = max(0.0, float(parts["sumsq"].sum()) / max(1, n) - mean**2)
    return {
        "rows": n,
        "missing": int(parts["missing"].sum()),
        "numeric": bool(parts["numeric"].all()),
        "integral": bool(parts["integral"].all()),
        "distinct": None if overflow or len(union) > cap else union,
        "mean": mean,
        "std": math.sqrt(variance),
    }


def _labels(datasets: dict[str, Any], plan: RayPlan, target: str, max_classes: int) -> Labels:
    """Task type, classes, target moments: from one pass over the target column on the cluster."""
    cap = max(max_classes, _CLASSIFICATION_MAX_DISTINCT)
    facts = _facts(datasets["train"], target, cap)
    if facts["missing"]:
        raise InvalidInputError(
            f"the target column {target!r} has {facts['missing']} missing values",
            field="target_column",
            hint="Drop those rows first (preprocess_supervised with handle_missing=drop).",
        )
    distinct = facts["distinct"]
    task = plan.task_type
    if task is None:  # as infer_task_type: labels (text, bool, few whole numbers) or a quantity
        few = distinct is not None and len(distinct) <= _CLASSIFICATION_MAX_DISTINCT
        task = "classification" if not facts["numeric"] or (facts["integral"] and few) else "regression"
    if task == "regression":
        if not facts["numeric"]:
            raise InvalidInputError(f"the target column {target!r} is not numeric", field="task_type")
        std = facts["std"]
        return Labels("regression", target_mean=facts["mean"], target_std=std if std > 1e-12 else 1.0)
    if distinct is None or len(distinct) > max_classes:
        raise InvalidInputError(
            f"the target {target!r} has more than {max_classes} classes, over the MLOPS_MAX_CLASSES limit",
            field="target_column",
            hint="Group rare labels, use task_type=regression for a quantity, or raise MLOPS_MAX_CLASSES.",
        )
    class_values = np.unique(np.asarray(sorted(distinct, key=str)))
    classes = [json_value(c) for c in class_values]
    if len(classes) < 2:
        raise InvalidInputError(
            f"the target {target!r} has a single class ({classes[0]!r}) in the training data",
            field="target_column",
            hint="Classification needs at least two classes.",
        )
    if plan.validation is not None:
        seen = _facts(datasets["validation"], target, cap)["distinct"]
        unseen = sorted(set(seen or []) - set(classes), key=str) if seen is not None else ["(many)"]
        if unseen:
            raise InvalidInputError(
                f"the validation data has classes the training data lacks: {unseen[:10]}",
                field="validation_data_s3_uri",
                hint="Split the data stratified (split_dataset with stratify_column) so every class is trained on.",
            )
    return Labels("classification", classes, class_values)


def _worker_config(plan: RayPlan, target: str, labels: Labels, preprocessor: Any, mailbox: Any) -> dict[str, Any]:
    return {
        "features": plan.features,
        "raw_features": [str(c) for c in plan.lineage.get("raw_feature_columns") or []],
        "preprocessor": preprocessor if plan.raw_validation else None,
        "target": target,
        "task_type": labels.task_type,
        "class_values": labels.class_values,
        "mailbox": mailbox,
        "seed": plan.seed,
        "has_validation": plan.validation is not None or bool(plan.validation_fraction),
    }


def _drive(ray: Any, job: Job, trainer: Any, mailbox: Any, on_record: Any) -> Any:
    """Run `trainer.fit()` in a thread of this driver; forward records, watch for a cancel."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def fit() -> None:
        try:
            box["result"] = trainer.fit()
        except BaseException as exc:  # handed to the waiting job
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=fit, name="ray-train-driver", daemon=True).start()
    try:
        while not done.wait(_POLL_SECONDS):
            for record in ray.get(mailbox.take.remote()):
                on_record(record)
            job.check_cancelled()
    except CancelledError:
        # Train workers stop at their next round; this process then ends, and with it (as the Ray
        # job that owns them) the controller, its worker group and its placement group.
        mailbox.cancel.remote()
        raise
    for record in ray.get(mailbox.take.remote()):
        on_record(record)
    if "error" in box:
        raise _train_error(box["error"])
    return box["result"]


def _train_error(exc: BaseException) -> BaseException:
    """A failed run as an MLOpsError: one raised in a worker keeps its field and hint."""
    from mcp_server.common.workers import rebuild_error

    failures = getattr(exc, "worker_failures", None) or {}
    for failure in [*failures.values(), exc]:
        text = str(failure)
        if _ERROR_TAG in text:
            payload = text.split(_ERROR_TAG, 1)[1].splitlines()[0]
            with contextlib.suppress(ValueError):
                return rebuild_error(json.loads(payload))
    first = next(iter(failures.values()), exc)
    detail = str(first).strip().splitlines()[-1][:300] if str(first).strip() else type(first).__name__
    return MLOpsError(f"the Ray Train run failed: {detail}", hint="See the server log and the Ray cluster's logs.")


def _run_config(plan: RayPlan, job: Job) -> Any:
    from ray.train import FailureConfig, RunConfig

    path, filesystem = plan.checkpoints
    return RunConfig(
        name=job.job_id,
        storage_path=path,
        storage_filesystem=filesystem,
        failure_config=FailureConfig(max_failures=0),  # a failed worker fails the job, not a retry loop
    )


def _remove_checkpoints(plan: RayPlan, job: Job) -> None:
    path, filesystem = plan.checkpoints
    with contextlib.suppress(Exception):  # leftovers are swept with the scratch area
        filesystem.delete_dir(f"{path}/{job.job_id}")


def _scores(
    model: Any, samples: dict[str, tuple[np.ndarray, np.ndarray]], plan: RayPlan, target: str, labels: Labels
) -> tuple[dict[str, Any], SupervisedData]:
    """Train and validation metrics, in the original label space as locally, on the rows the
    workers sent back: a fixed sample of the training rows, the validation rows (up to a cap)."""
    metrics: dict[str, Any] = {}
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    classification = labels.task_type == "classification"
    for name, (x, y) in samples.items():
        original = np.asarray(labels.class_values)[y] if classification else y.astype(np.float64)
        arrays[name] = (x, original)
        metrics[name] = score(model, x, original, labels.task_type, labels.classes, classification, max_rows=None)
    x_train, y_train = arrays["train"]
    x_val, y_val = arrays.get("validation", (None, None))
    data = SupervisedData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        task_type=labels.task_type,
        target_column=target,
        feature_names=plan.features,
        feature_dtypes=plan.feature_dtypes,
        classes=labels.classes,
        training_data_uri=plan.train.loc.uri,
        data_fingerprint="",
        validation_data_uri=plan.validation.loc.uri if plan.validation else None,
        validation_source="data" if plan.validation else ("fraction" if plan.validation_fraction else None),
        class_values=labels.class_values,
    )
    return metrics, data


def _fingerprint(storage: S3Utils, loc: Location) -> str:
    """sha256 of a local file (read in chunks); an S3 object's ETag (reading it all here is what
    this backend avoids)."""
    if loc.scheme == "local":
        assert loc.path is not None
        return sha256_file(loc.path)
    head = storage.s3.head_object(Bucket=loc.bucket, Key=loc.key)
    return f"s3-etag:{str(head.get('ETag', '')).strip(chr(34))}"


@dataclass
class _Run:
    """What both fits share around the trainer: connection, data, labels, progress."""

    job: Job
    storage: S3Utils
    params: Any
    plan: RayPlan
    model_loc: Location
    total: int
    ray: Any = None
    mailbox: Any = None
    datasets: dict[str, Any] = field(default_factory=dict)
    labels: Labels | None = None
    preprocessor: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    def start(self) -> None:
        job, plan = self.job, self.plan
        job.report(0, self.total, f"connecting to Ray at {plan.target.address}")
        self.ray = _init_ray(plan.target)
        job.mark("ray")
        job.check_cancelled()
        self.datasets = _datasets(self.ray, plan, self.params.target_column)
        self.labels = _labels(self.datasets, plan, self.params.target_column, self.storage.config.max_classes)
        if plan.bundle_preprocessor:
            self.preprocessor = load_preprocessor(self.storage, plan.lineage)
        self.mailbox = _mailbox(self.ray)
        job.mark("load")
        job.check_cancelled()
        job.report(1, self.total, f"training on {plan.num_workers} Ray workers")

    def on_record(self, record: dict[str, Any]) -> None:
        if "sample" in record:  # each worker's shard size and rows to score, sent at the end
            name = record["sample"]
            self.rows[name] = self.rows.get(name, 0) + int(record["rows"])
            self.samples.setdefault(name, []).append((record["x"], record["y"]))
            return
        self.history.append(record)
        self.job.add_history(record)
        step = record.get("iteration", record.get("epoch", 0))
        self.job.report(2 + len(self.history) - 1, self.total, self.progress_text(record, step))

    def progress_text(self, record: dict[str, Any], step: int) -> str:
        if "epoch" in record:
            loss = record.get("val_loss", record.get("loss"))
            return f"epoch {record['epoch']}/{self.total - 3}" + (f" loss {loss:.4g}" if loss else "")
        return f"round {step + 1}/{self.total - 3}"

    def finish(
        self, model: Any, family: Any, *, algorithm: str, libraries: tuple[str, ...], extra: dict[str, Any]
    ) -> tuple[dict[str, Any], SupervisedData]:
        job, plan = self.job, self.plan
        assert self.labels is not None
        job.mark("fit")
        samples = {name: tuple(map(np.concatenate, zip(*parts, strict=True))) for name, parts in self.samples.items()}
        if "train" not in samples:
            raise MLOpsError("the Ray workers sent no rows back to score", hint="See the Ray cluster's logs.")
        rows = self.rows
        metrics, data = _scores(model, samples, plan, self.params.target_column, self.labels)  # type: ignore[arg-type]
        data.data_fingerprint = _fingerprint(self.storage, plan.train.loc)
        data.preprocessor = self.preprocessor
        if self.preprocessor is not None:
            data.raw_feature_columns = [str(c) for c in plan.lineage.get("raw_feature_columns") or []] or None
        elif plan.lineage.get("pipeline_s3_uri"):
            data.warnings.append(
                "the data's preprocessing pipeline is not bundled (its columns differ from the features used); "
                "pass processed data to evaluate this model"
            )
        job.mark("score")
        meta = supervised_metadata(
            data,
            algorithm=algorithm,
            hyperparameters=plan.hp.model_dump(),
            metrics=metrics,
            history=self.history,
            seed=plan.seed,
            label_encoded=self.labels.task_type == "classification",
            libraries=(*libraries, "ray"),
            feature_importance=extra.pop("feature_importance", None),
            job_id=job.job_id,
            extra={
                **extra,
                "n_train_rows": rows.get("train", 0),
                "n_validation_rows": rows.get("validation", 0),
                "train_metrics_rows": len(data.y_train),
                "backend": "ray",
                "ray": {"address": plan.target.address, "num_workers": plan.num_workers, "resources": plan.resources},
            },
        )
        final = publish_bundle(
            job, self.storage, self.model_loc, model, family, meta, self.total, preprocessor=self.preprocessor
        )
        data.warnings.append(f"trained on Ray at {plan.target.address} with {plan.num_workers} workers")
        return final, data


def _check_worker_cancel(mailbox: Any) -> None:
    import ray

    if ray.get(mailbox.is_cancelled.remote()):
        raise CancelledError("the job was cancelled")


# ---------------------------------------------------------------------------- train workers
def _shard(config: dict[str, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """This worker's shard of a dataset as (float32 features, encoded labels / float32 targets)."""
    import ray.train

    meta = {"feature_names": config["features"], "raw_feature_columns": config["raw_features"]}
    preprocessor = config["preprocessor"] if name == "validation" else None
    field_name = f"{name}_data_s3_uri"
    parts_x, parts_y = [], []
    target = config["target"]
    for batch in ray.train.get_dataset_shard(name).iter_batches(batch_format="pandas", batch_size=_BATCH_ROWS):
        parts_x.append(feature_matrix(batch, meta, preprocessor, field_name, np.float32))
        y = batch[target]
        if y.isna().any():
            raise InvalidInputError(
                f"the target column {target!r} has missing values",
                field="target_column",
                hint="Drop those rows first (preprocess_supervised with handle_missing=drop).",
            )
        values = y.to_numpy()
        if config["task_type"] == "classification":
            parts_y.append(np.searchsorted(config["class_values"], values).astype(np.int32))
        else:
            parts_y.append(values.astype(np.float32))
    width = len(config["features"])
    x = np.concatenate(parts_x) if parts_x else np.zeros((0, width), np.float32)
    y = np.concatenate(parts_y) if parts_y else np.zeros(0, np.float32)
    return x, y


def _send_samples(config: dict[str, Any], shards: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """This worker's row counts and the rows the driver scores: a fixed sample of the training
    shard, the validation shard up to a cap (split between the workers)."""
    import ray
    import ray.train

    from mcp_server.capabilities.ml_training.data import sample_rows

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    caps = {"train": TRAIN_SCORE_MAX_ROWS, "validation": _VALIDATION_SCORE_MAX_ROWS}
    for name, (x, y) in shards.items():
        rows = sample_rows(len(y), max(1, caps[name] // world), config["seed"] + rank)
        picked = (x, y) if rows is None else (x[rows], y[rows])
        # Waited for: the driver reads its mailbox once more when the run has ended.
        ray.get(config["mailbox"].put.remote({"sample": name, "rows": len(y), "x": picked[0], "y": picked[1]}))


def _tagged(work: Any, config: dict[str, Any]) -> None:
    """Run a worker's loop; an expected failure crosses Ray as tagged JSON (field and hint kept)."""
    try:
        work(config)
    except CancelledError:
        raise
    except MLOpsError as exc:
        raise RuntimeError(_ERROR_TAG + json.dumps(exc.to_dict())) from None


def _xgboost_worker(config: dict[str, Any]) -> None:
    _tagged(_xgboost_loop, config)


def _xgboost_loop(config: dict[str, Any]) -> None:
    import ray.train
    import xgboost as xgb
    from ray.train.xgboost import RayTrainReportCallback

    from mcp_server.capabilities.ml_training.data import sample_rows

    rank = ray.train.get_context().get_world_rank()
    mailbox = config["mailbox"]
    x, y = _shard(config, "train")
    dtrain = xgb.DMatrix(x, label=y)
    rows = sample_rows(len(y), config["curve_rows"], config["seed"] + rank)
    evals = [(dtrain if rows is None else xgb.DMatrix(x[rows], label=y[rows]), "train")]
    shards = {"train": (x, y)}
    if config["has_validation"]:
        x_val, y_val = _shard(config, "validation")
        evals.append((xgb.DMatrix(x_val, label=y_val), "validation"))
        shards["validation"] = (x_val, y_val)

    class Rounds(xgb.callback.TrainingCallback):
        """Each round to the mailbox (rank 0: the metrics are already global); a cancel stops it."""

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            if rank == 0:
                record: dict[str, Any] = {"iteration": epoch}
                for set_name, metrics in evals_log.items():
                    for metric, values in metrics.items():
                        record[f"{set_name}_{metric}"] = float(values[-1])
                mailbox.put.remote(record)
            _check_worker_cancel(mailbox)
            return False

    class CheckpointAtEnd(RayTrainReportCallback):
        """Ray Train's callback, reporting once at the end with the model (UBJSON) as checkpoint:
        its per-round reports each wait for the controller's poll."""

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            self._evals_log = evals_log  # type: ignore[assignment]
            return False

    xgb.train(
        config["params"],
        dtrain,
        num_boost_round=config["rounds"],
        evals=evals,
        early_stopping_rounds=config["early_stopping"],
        callbacks=[Rounds(), CheckpointAtEnd(checkpoint_at_end=True)],
        verbose_eval=False,
    )
    _send_samples(config, shards)


def _xgboost_params(hp: XGBoostHyperparameters, labels: Labels, seed: int) -> dict[str, Any]:
    """The booster parameters the local trainer's XGBClassifier / XGBRegressor would use."""
    params: dict[str, Any] = hp.model_dump(exclude={"early_stopping_rounds", "n_estimators", "n_jobs"})
    params["seed"] = seed
    if hp.n_jobs:
        params["nthread"] = hp.n_jobs
    classes = labels.classes or []
    if labels.task_type != "classification" or len(classes) != 2:
        params.pop("scale_pos_weight")
    if labels.task_type == "regression":
        params["objective"] = "reg:squarederror"
    elif len(classes) == 2:
        params["objective"] = "binary:logistic"
    else:
        params.update(objective="multi:softprob", num_class=len(classes))
    return params


def fit_xgboost(
    job: Job, storage: S3Utils, params: TrainXGBoostInput, model_loc: Location, plan: RayPlan
) -> dict[str, Any]:
    import xgboost as xgb
    from ray.train import ScalingConfig
    from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

    hp: XGBoostHyperparameters = plan.hp
    run = _Run(job, storage, params, plan, model_loc, total=hp.n_estimators + 3)
    try:
        run.start()
        assert run.labels is not None
        config = _worker_config(plan, params.target_column, run.labels, run.preprocessor, run.mailbox)
        early_stopping = hp.early_stopping_rounds if config["has_validation"] else None
        config.update(
            params=_xgboost_params(hp, run.labels, plan.seed),
            rounds=hp.n_estimators,
            early_stopping=early_stopping,
            curve_rows=max(1, _TRAIN_CURVE_ROWS // plan.num_workers),
        )
        trainer = XGBoostTrainer(
            _xgboost_worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=plan.num_workers, resources_per_worker=plan.resources),
            datasets=run.datasets,
            run_config=_run_config(plan, job),
        )
        result = _drive(run.ray, job, trainer, run.mailbox, run.on_record)
        classification = run.labels.task_type == "classification"
        model: Any = xgb.XGBClassifier() if classification else xgb.XGBRegressor()
        with result.checkpoint.as_directory() as folder:  # the UBJSON file of RayTrainReportCallback
            model.load_model(str(Path(folder) / RayTrainReportCallback.CHECKPOINT_NAME))
        best_attr = model.get_booster().attr("best_iteration")
        best = int(best_attr) if early_stopping is not None and best_attr is not None else None
        final, data = run.finish(
            model,
            "xgboost",
            algorithm="xgboost",
            libraries=("xgboost",),
            extra={
                "best_iteration": best,
                "feature_importance": importance_dict(plan.features, model.feature_importances_),
            },
        )
    finally:
        _remove_checkpoints(plan, job)
    return supervised_result(data, final, best_iteration=best)


# ---------------------------------------------------------------------------- the network
def _torch_worker(config: dict[str, Any]) -> None:
    _tagged(_torch_loop, config)


def _torch_loop(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist
    from safetensors.torch import save_file

    from mcp_server.capabilities.ml_training.nets.fitting import seeds
    from mcp_server.capabilities.ml_training.nets.torch_fit import _init_weights
    from mcp_server.common.s3_utils import json_bytes
    from mcp_server.common.torch_models import ARCHITECTURE_FILE, build_module

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    mailbox = config["mailbox"]
    arch = config["architecture"]
    classification = arch["task_type"] == "classification"
    x_np, y_np = _shard(config, "train")
    shards = {"train": (x_np, y_np)}
    if not classification:  # trained on standardised targets, as locally
        y_np = ((y_np - arch["target_mean"]) / arch["target_std"]).astype(np.float32)
    x = torch.from_numpy(x_np)
    y = torch.from_numpy(y_np.astype(np.int64) if classification else y_np)
    x_val = y_val = None
    if config["has_validation"]:
        xv, yv = _shard(config, "validation")
        x_val, y_val = torch.from_numpy(xv), yv
        shards["validation"] = (xv, yv)

    init_seed, shuffle_seed, _ = seeds(config["seed"], 3)
    module = build_module(arch)
    _init_weights(module, torch.Generator().manual_seed(init_seed))  # same on every rank; DDP syncs anyway
    model = ray.train.torch.prepare_model(module)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    loss_fn = torch.nn.CrossEntropyLoss() if classification else torch.nn.MSELoss()
    shuffle = torch.Generator().manual_seed(shuffle_seed + rank)
    per_worker = max(1, config["batch_size"] // world)  # DDP averages: one global batch of batch_size

    def total(*values: float) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    # Every rank must take the same number of steps (each is a collective): the largest shard decides.
    largest = torch.tensor([len(y)], dtype=torch.int64)
    dist.all_reduce(largest, op=dist.ReduceOp.MAX)
    steps = max(1, math.ceil(int(largest.item()) / per_worker))
    loss_scale = arch["target_std"] ** 2 if not classification else 1.0
    patience = config["patience"] if config["has_validation"] else None
    best_loss, best_epoch, best_state, stopped_early = math.inf, None, None, False
    n = max(1, len(y))
    for epoch in range(config["epochs"]):
        _check_worker_cancel(mailbox)
        model.train()
        order = torch.randperm(n, generator=shuffle)
        loss_sum = 0.0
        for step in range(steps):
            idx = order[torch.arange(step * per_worker, (step + 1) * per_worker) % n] if len(y) else order[:0]
            optimizer.zero_grad(set_to_none=True)
            out = model(x[idx])
            loss = loss_fn(out if classification else out.squeeze(-1), y[idx])
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
        summed, seen = total(loss_sum, float(steps * per_worker))
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": summed / seen * loss_scale}
        if not math.isfinite(record["loss"]):
            raise InvalidInputError(
                f"training diverged (the loss became {record['loss']} at epoch {epoch + 1})",
                field="learning_rate",
                hint="Lower learning_rate, or check that the features are scaled.",
            )
        if x_val is not None and y_val is not None:
            model.eval()
            with torch.inference_mode():
                outputs = module(x_val).numpy().astype(np.float64)
            if classification:
                shifted = outputs - outputs.max(axis=1, keepdims=True)
                log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                picked = log_p[np.arange(len(y_val)), y_val.astype(np.int64)]
                nll, correct, count = total(float(-picked.sum()), float((outputs.argmax(1) == y_val).sum()), len(y_val))
                record.update(val_loss=nll / count, val_accuracy=correct / count)
            else:
                predictions = outputs[:, 0] * arch["target_std"] + arch["target_mean"]
                squared, count = total(float(((predictions - y_val) ** 2).sum()), float(len(y_val)))
                record.update(val_loss=squared / count, val_rmse=math.sqrt(squared / count))
        if rank == 0:
            mailbox.put.remote(record)
        if patience is None:
            continue
        if record["val_loss"] < best_loss:
            best_loss, best_epoch = record["val_loss"], epoch + 1
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        elif epoch + 1 - (best_epoch or 0) >= patience:
            stopped_early = epoch + 1 < config["epochs"]
            break
    if best_state is not None and best_epoch != epoch + 1:
        module.load_state_dict(best_state)
    summary = {"best_epoch": best_epoch, "stopped_early": stopped_early, "epochs_run": epoch + 1}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:  # a checkpoint is a folder of our own files: safetensors + JSON, no pickle
            tensors = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
            save_file(tensors, str(Path(folder) / "model.safetensors"), metadata={"format": "pt"})
            (Path(folder) / ARCHITECTURE_FILE).write_bytes(json_bytes(arch))
            (Path(folder) / "summary.json").write_text(json.dumps(summary))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(summary, checkpoint=checkpoint)
    _send_samples(config, shards)


def fit_neural_network(
    job: Job, storage: S3Utils, params: TrainNeuralNetworkInput, model_loc: Location, plan: RayPlan
) -> dict[str, Any]:
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    from mcp_server.capabilities.ml_training.nets.fitting import mlp_architecture
    from mcp_server.common.torch_models import ARCHITECTURE_FILE, load_torch_model

    hp: NeuralNetworkHyperparameters = plan.hp
    run = _Run(job, storage, params, plan, model_loc, total=hp.epochs + 3)
    try:
        run.start()
        labels = run.labels
        assert labels is not None
        mean, std = labels.target_mean, labels.target_std
        n_classes = len(labels.classes) if labels.classes else None
        arch = mlp_architecture(
            "torch", len(plan.features), list(hp.hidden_layers), labels.task_type, n_classes, 0.0, mean, std
        )
        config = _worker_config(plan, params.target_column, labels, run.preprocessor, run.mailbox)
        config.update(
            architecture=arch,
            epochs=hp.epochs,
            batch_size=hp.batch_size,
            learning_rate=hp.learning_rate,
            patience=hp.early_stopping_patience,
        )
        trainer = TorchTrainer(
            _torch_worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=plan.num_workers, resources_per_worker=plan.resources),
            datasets=run.datasets,
            run_config=_run_config(plan, job),
        )
        result = _drive(run.ray, job, trainer, run.mailbox, run.on_record)
        with result.checkpoint.as_directory() as folder:
            files = Path(folder)
            model = load_torch_model(
                files / "model.safetensors", {}, {ARCHITECTURE_FILE: (files / ARCHITECTURE_FILE).read_bytes()}
            )
            summary = json.loads((files / "summary.json").read_text())
        best_epoch = summary.get("best_epoch")
        model.best_epoch = best_epoch
        model.stopped_early = bool(summary.get("stopped_early"))
        epochs_run = len(run.history)
        final, data = run.finish(
            model,
            "torch",
            algorithm="neural_network",
            libraries=("torch",),
            extra={"framework": "pytorch", "epochs_run": epochs_run, "best_epoch": best_epoch},
        )
    finally:
        _remove_checkpoints(plan, job)
    return supervised_result(data, final, framework="pytorch", epochs_run=epochs_run, best_epoch=best_epoch)
