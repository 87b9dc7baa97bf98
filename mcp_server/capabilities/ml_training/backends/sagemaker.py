"""train_xgboost with `backend: "sagemaker"`: a SageMaker training job with the built-in XGBoost
algorithm, driven from a thread of the server, whose model becomes the same bundle as local training.

`prepare` (before any job exists) checks what would only fail later: S3 output, the role, the
image for the region, the instance type, hyperparameters the algorithm cannot take. `fit_xgboost`
(the job) then:

1. reads the data as local training does (target, classes, validation split, the preprocessing
   pipeline), maps task and hyperparameters to the algorithm's names, and writes the channels
   the algorithm reads (CSV, label first, no header; classes encoded 0..k-1 as local training
   encodes them) under `<model folder>/sagemaker/<training job>/input/`;
2. calls CreateTrainingJob (output to `<model folder>/sagemaker/`) and polls DescribeTrainingJob:
   status, secondary status and final metrics go to the job's progress and `live_metrics`, each
   secondary status transition to its history; a cancel calls StopTrainingJob;
3. reads `<output>/<training job>/output/model.tar.gz` safely (regular files only, no links or
   `..`, size-capped, never extracted to disk), loads `xgboost-model` (UBJSON or JSON only: a
   pickle or XGBoost's deprecated binary format is refused), scores it on the data it read and
   writes the bundle.

The input channels (a copy of the data) are deleted when the job ends, whatever the outcome; the
SageMaker output (`model.tar.gz`) stays beside the bundle as the raw record of the job.

The built-in version defaults to 3.0-5, not 1.7-1: the 1.7-1 container (XGBoost 1.7.4) saves
`xgboost-model` in XGBoost's deprecated binary format, which XGBoost 3.1 and later (this server's)
cannot read, while 3.0-5 (XGBoost 3.0.5) saves UBJSON. An image override naming a 0.x / 1.x
built-in version is refused before anything is uploaded.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mcp_server.capabilities.ml_training.data import (
    SupervisedData,
    importance_dict,
    resolve_seed,
    supervised_metadata,
    supervised_metrics,
)
from mcp_server.capabilities.ml_training.schemas import TrainXGBoostInput, XGBoostHyperparameters
from mcp_server.capabilities.ml_training.tools.common import publish_bundle
from mcp_server.capabilities.ml_training.tools.supervised import load_supervised, supervised_result
from mcp_server.common.bundles import CODECS
from mcp_server.common.exceptions import BadFormatError, CancelledError, InvalidInputError, MLOpsError, NotFoundError
from mcp_server.common.jobs import Job
from mcp_server.common.logger import get_logger
from mcp_server.common.s3_utils import Location, S3Utils
from mcp_server.common.services import Services
from mcp_server.config import SAGEMAKER_INSTANCE_TYPE

_log = get_logger(__name__)

BUILTIN_VERSION = "3.0-5"
REPOSITORY = "sagemaker-xgboost"
# The registry account of the built-in XGBoost image (repository sagemaker-xgboost) per region, as
# AWS documents it ("Docker Registry Paths and Example Code"; the same accounts for 1.7-1, 3.0-5
# and 3.2-0). The ISO partitions are left out: there, set MLOPS_SAGEMAKER_IMAGE_URI.
REGISTRY_ACCOUNTS = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}
# Built-in versions whose container saves the deprecated binary model format (XGBoost < 2).
_LEGACY_TAG = re.compile(r"/sagemaker-xgboost:(0\.\d+|1\.\d+)-\d+(-cpu-py3)?$|/xgboost:1$")
MODEL_MEMBER = "xgboost-model"  # what the built-in algorithm saves in /opt/ml/model
MAX_RUNTIME_SECONDS = 86_400  # SageMaker's own default stopping condition
POLL_SECONDS = 15.0  # DescribeTrainingJob is rate limited; a training job takes minutes anyway
_MAX_TAR_MEMBERS = 1000
# Progress steps: channels, job created, then SageMaker's secondary statuses, then the bundle.
_STEPS = {"Starting": 3, "Downloading": 4, "Training": 5, "Uploading": 6, "Completed": 7}
_TOTAL = 10
_TERMINAL = ("Completed", "Failed", "Stopped")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Plan:
    """Everything `prepare` decided, handed to the fit in the same process."""

    client: Any  # the server's boto3 SageMaker client (Services.aws)
    seed: int
    hyperparameters: XGBoostHyperparameters
    image: str
    role_arn: str
    instance_type: str
    instance_count: int
    kms_key_id: str | None


# ------------------------------------------------------------------------------ checks
def image_uri(region: str, override: str | None) -> str:
    """The training image: MLOPS_SAGEMAKER_IMAGE_URI, else the built-in XGBoost of the region."""
    if override:
        if _LEGACY_TAG.search(override):
            raise InvalidInputError(
                f"MLOPS_SAGEMAKER_IMAGE_URI names a built-in XGBoost version ({override.rsplit(':', 1)[-1]}) whose "
                "container saves XGBoost's deprecated binary model format, which this server's XGBoost cannot read",
                field="backend",
                hint=f"Use the built-in version {BUILTIN_VERSION} (unset MLOPS_SAGEMAKER_IMAGE_URI) or a later one.",
            )
        return override
    account = REGISTRY_ACCOUNTS.get(region)
    if account is None:
        raise InvalidInputError(
            f"no built-in SageMaker XGBoost image is known for region {region!r}",
            field="backend",
            hint="Set AWS_REGION to a SageMaker region, or MLOPS_SAGEMAKER_IMAGE_URI to the image to use.",
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{REPOSITORY}:{BUILTIN_VERSION}"


def algorithm_hyperparameters(
    hp: XGBoostHyperparameters, data: SupervisedData, seed: int, instance_count: int
) -> dict[str, str]:
    """XGBoostHyperparameters (the local names) -> the built-in algorithm's, as strings."""
    check_hyperparameters(hp, instance_count)
    values: dict[str, Any] = {
        "num_round": hp.n_estimators,
        "max_depth": hp.max_depth,
        "eta": hp.learning_rate,
        "subsample": hp.subsample,
        "colsample_bytree": hp.colsample_bytree,
        "min_child_weight": hp.min_child_weight,
        "gamma": hp.gamma,
        "alpha": hp.reg_alpha,
        "lambda": hp.reg_lambda,
        "max_bin": hp.max_bin,
        "tree_method": hp.tree_method,
        "seed": seed,
    }
    if hp.n_jobs is not None:
        values["nthread"] = hp.n_jobs  # threads per instance
    classes = data.classes or []
    if data.task_type == "regression":
        values.update(objective="reg:squarederror", eval_metric="rmse")
    elif len(classes) == 2:
        values.update(objective="binary:logistic", eval_metric="logloss", scale_pos_weight=hp.scale_pos_weight)
    else:
        values.update(objective="multi:softprob", num_class=len(classes), eval_metric="mlogloss")
    if data.x_val is not None and hp.early_stopping_rounds is not None:
        values["early_stopping_rounds"] = hp.early_stopping_rounds  # needs the validation channel
    if instance_count > len(data.y_train):
        raise InvalidInputError(
            f"instance_count {instance_count} is more than the {len(data.y_train)} training rows to share",
            field="instance_count",
        )
    return {name: _text(value) for name, value in values.items()}


def check_hyperparameters(hp: XGBoostHyperparameters, instance_count: int) -> None:
    """What the algorithm would refuse minutes later, after the instances started (no data needed)."""
    if hp.tree_method == "exact" and instance_count > 1:
        raise InvalidInputError(
            "tree_method 'exact' cannot train on several instances (distributed XGBoost has no exact method)",
            field="hyperparameters.tree_method",
            hint="Use tree_method hist or approx, or instance_count 1.",
        )
    too_large = [name for name, value in hp.model_dump().items() if isinstance(value, float) and value > _FLOAT32_MAX]
    if too_large:
        raise InvalidInputError(
            f"{too_large[0]} is out of XGBoost's range (floats must fit in float32, below 3.4e38)",
            field="hyperparameters",
        )


def _text(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def prepare(storage: S3Utils, params: TrainXGBoostInput, model_loc: Location, services: Services) -> tuple[Plan]:
    """Everything that can be refused before a job exists or anything is uploaded."""
    config = storage.config
    if model_loc.scheme != "s3":
        raise InvalidInputError(
            f"backend sagemaker needs an s3:// model folder; {model_loc.uri} is local storage",
            field="model_output_s3_uri",
            hint="Pass s3://bucket/folder (or set MLOPS_S3_BUCKET): SageMaker reads and writes S3 only.",
        )
    if not config.sagemaker_role_arn:
        raise InvalidInputError(
            "backend sagemaker needs SAGEMAKER_ROLE_ARN (the IAM role the training job runs as); it is not set",
            field="backend",
            hint="Set SAGEMAKER_ROLE_ARN in the server's environment (README: Training backends) or use backend local.",
        )
    image = image_uri(config.aws_region, config.sagemaker_image_uri)
    instance_type = params.instance_type or config.sagemaker_instance_type
    if not SAGEMAKER_INSTANCE_TYPE.match(instance_type):
        raise InvalidInputError(
            f"{instance_type!r} is not a SageMaker instance type", field="instance_type", hint="Use e.g. ml.m5.xlarge."
        )
    count = params.instance_count or 1
    hp = params.hyperparameters or XGBoostHyperparameters()
    check_hyperparameters(hp, count)
    return (
        Plan(
            client=services.aws("sagemaker"),
            seed=resolve_seed(params.random_state),
            hyperparameters=hp,
            image=image,
            role_arn=config.sagemaker_role_arn,
            instance_type=instance_type,
            instance_count=count,
            kms_key_id=config.kms_key_id,
        ),
    )


# ------------------------------------------------------------------------------ the job
def training_job_name(job_id: str) -> str:
    """A SageMaker name (letters, digits, hyphens; 63 at most) derived from the server's job id."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", f"mlops-{job_id}").strip("-")
    return name[:63].rstrip("-")


_CSV_ROWS_PER_CHUNK = 20_000


def _write_csv(path: Path, y: np.ndarray, x: np.ndarray) -> None:
    """Label first, no header; a missing feature is an empty field (XGBoost's CSV reader: missing).
    Written in chunks: the text of a large matrix is several times its size in memory."""
    with path.open("w") as handle:
        for start in range(0, len(y), _CSV_ROWS_PER_CHUNK):
            rows = slice(start, start + _CSV_ROWS_PER_CHUNK)
            chunk = np.column_stack([y[rows].astype(np.float64), x[rows].astype(np.float64)])
            buffer = io.StringIO()
            np.savetxt(buffer, chunk, fmt="%.9g", delimiter=",")
            handle.write(buffer.getvalue().replace("nan", ""))


def write_channels(storage: S3Utils, plan: Plan, data: SupervisedData, prefix: Location) -> dict[str, Location]:
    """The train (and validation) channel files under `prefix`: what the built-in algorithm reads.
    With several instances the train channel is one file per instance (sharded by S3 key): each
    instance trains on its share, as distributed XGBoost expects."""
    classification = data.task_type == "classification"
    sets = {"train": (data.x_train, data.y_train)}
    if data.x_val is not None and data.y_val is not None:
        sets["validation"] = (data.x_val, data.y_val)
    channels: dict[str, Location] = {}
    with storage.scratch("mlops-sagemaker-") as tmp:
        for name, (x, y) in sets.items():
            labels = data.encode(y) if classification else y.astype(np.float64)
            parts = plan.instance_count if name == "train" else 1
            for index, rows in enumerate(np.array_split(np.arange(len(labels)), parts)):
                path = tmp / f"{name}-{index:04d}.csv"
                _write_csv(path, labels[rows], x[rows])
                storage.upload_file(path, storage.join(prefix, name, path.name), "text/csv")
                path.unlink()
            channels[name] = storage.join(prefix, name)
    return channels


def create_request(
    plan: Plan, hyperparameters: dict[str, str], name: str, channels: dict[str, Location], output: Location
) -> dict[str, Any]:
    """The CreateTrainingJob parameters."""
    output_config: dict[str, Any] = {"S3OutputPath": output.uri}
    if plan.kms_key_id:
        output_config["KmsKeyId"] = plan.kms_key_id
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": plan.image, "TrainingInputMode": "File"},
        "RoleArn": plan.role_arn,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": loc.uri + "/",
                        "S3DataDistributionType": "ShardedByS3Key"
                        if channel == "train" and plan.instance_count > 1
                        else "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "CompressionType": "None",
            }
            for channel, loc in channels.items()
        ],
        "OutputDataConfig": output_config,
        "ResourceConfig": {
            "InstanceType": plan.instance_type,
            "InstanceCount": plan.instance_count,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
        "Tags": [{"Key": "mlops:tool", "Value": "train_xgboost"}],
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def final_metrics(described: dict[str, Any]) -> dict[str, float]:
    """FinalMetricDataList as {"train:logloss": value, ...}."""
    return {
        str(m["MetricName"]): float(m["Value"])
        for m in described.get("FinalMetricDataList") or []
        if "MetricName" in m and "Value" in m
    }


def track(job: Job, client: Any, name: str) -> dict[str, Any]:
    """Poll DescribeTrainingJob until the training job ends; record it on `job` as it goes. A
    cancelled job stops the training job (StopTrainingJob) and raises CancelledError."""
    seen = 0
    while True:
        described = client.describe_training_job(TrainingJobName=name)
        status = str(described.get("TrainingJobStatus"))
        secondary = str(described.get("SecondaryStatus") or "")
        transitions = described.get("SecondaryStatusTransitions") or []
        for transition in transitions[seen:]:
            job.add_history(
                {
                    "secondary_status": transition.get("Status"),
                    "message": transition.get("StatusMessage"),
                    "start_time": _iso(transition.get("StartTime")),
                }
            )
        seen = max(seen, len(transitions))
        job.info["live_metrics"] = {
            "sagemaker": {
                "training_job_name": name,
                "status": status,
                "secondary_status": secondary,
                **final_metrics(described),
            }
        }
        job.report(_STEPS.get(secondary, 2), _TOTAL, f"SageMaker training job {name}: {status} ({secondary})")
        if status in _TERMINAL:
            return described
        if job.cancel_event.wait(POLL_SECONDS):  # a cancel wakes it at once
            _stop(client, name)
            raise CancelledError(f"job {job.job_id} was cancelled; training job {name} was stopped, nothing written")


def _stop(client: Any, name: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.stop_training_job(TrainingJobName=name)
    except ClientError as exc:  # it ended meanwhile: nothing left to stop
        _log.warning("StopTrainingJob %s: %s", name, exc.response.get("Error", {}).get("Code"))


# ------------------------------------------------------------------------------ the artifact
def read_model_member(archive: bytes, max_bytes: int) -> bytes:
    """The bytes of `xgboost-model` inside SageMaker's model.tar.gz, read without extracting: an
    archive with a link, a device, an absolute or `..` name, or too much content is refused."""
    refused = "the SageMaker model artifact (model.tar.gz)"
    found: bytes | None = None
    total = 0  # what the archive expands to: bounded as a whole, not only per entry
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for count, member in enumerate(tar, start=1):
                name = member.name
                parts = [p for p in name.split("/") if p not in ("", ".")]
                if count > _MAX_TAR_MEMBERS:
                    raise BadFormatError(f"{refused} holds over {_MAX_TAR_MEMBERS} entries")
                if name.startswith("/") or "\\" in name or ".." in parts:
                    raise BadFormatError(f"{refused} has an entry outside its folder ({name[:100]!r}); refused")
                if member.isdir():
                    continue
                if not member.isfile():  # symlinks, hard links, devices, FIFOs
                    raise BadFormatError(f"{refused} has a link or special file ({name[:100]!r}); refused")
                total += member.size
                if total > max_bytes:
                    raise BadFormatError(f"{refused} expands past the MLOPS_MAX_BUNDLE_MB limit ({name[:100]!r})")
                if parts == [MODEL_MEMBER]:
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file always has content
                    found = handle.read(max_bytes + 1)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BadFormatError(f"{refused} is not a readable gzip tar archive ({type(exc).__name__})") from None
    if found is None:
        raise BadFormatError(
            f"{refused} holds no {MODEL_MEMBER}", hint="Use the built-in XGBoost algorithm image (see README)."
        )
    if len(found) > max_bytes:
        raise BadFormatError(f"{refused}: {MODEL_MEMBER} is over the MLOPS_MAX_BUNDLE_MB limit")
    return found


def load_model(storage: S3Utils, raw: bytes, task_type: str, n_classes: int, n_features: int) -> Any:
    """An XGBoost estimator from the algorithm's model file: UBJSON or JSON only, matching the task."""
    if raw[:1] == b"\x80":  # the pickle protocol 2+ opcode
        raise BadFormatError(
            "the SageMaker model file is a pickle, which this server never loads",
            hint="Train with the built-in XGBoost algorithm (it saves UBJSON), not a script that pickles the model.",
        )
    if raw[:1] != b"{":  # JSON and UBJSON both open an object
        raise BadFormatError(
            "the SageMaker model file is not UBJSON or JSON: XGBoost's deprecated binary format (written by the "
            "built-in 0.x / 1.x versions, which this server's XGBoost cannot read) or not a model",
            hint=f"Train with the built-in version {BUILTIN_VERSION} (unset MLOPS_SAGEMAKER_IMAGE_URI).",
        )
    suffix = ".json" if raw[:2] == b'{"' else ".ubj"  # XGBoost picks the parser by the file name
    with storage.scratch("mlops-sagemaker-") as tmp:
        path = tmp / f"model{suffix}"
        path.write_bytes(raw)
        model = CODECS["xgboost"].load(path, {"task_type": task_type}, {})
    config = json.loads(model.get_booster().save_config())
    objective = config["learner"]["objective"]["name"]
    expected = (
        "reg:squarederror" if task_type == "regression" else "binary:logistic" if n_classes == 2 else "multi:softprob"
    )
    features = model.get_booster().num_features()
    if objective != expected or features != n_features:
        raise BadFormatError(
            f"the SageMaker model ({objective}, {features} features) does not match the training call "
            f"({expected}, {n_features} features)"
        )
    return model


# ------------------------------------------------------------------------------ the fit
def fit_xgboost(
    job: Job, storage: S3Utils, params: TrainXGBoostInput, model_loc: Location, plan: Plan
) -> dict[str, Any]:
    client = plan.client
    job.report(0, _TOTAL, "reading data")
    data = load_supervised(storage, params, plan.seed)  # the same reading, checks and split as local training
    mapped = algorithm_hyperparameters(plan.hyperparameters, data, plan.seed, plan.instance_count)
    job.check_cancelled()
    name = training_job_name(job.job_id)
    base = storage.join(model_loc, "sagemaker")
    inputs = storage.join(base, name, "input")
    job.report(0.5, _TOTAL, "writing the SageMaker input channels")
    try:
        channels = write_channels(storage, plan, data, inputs)
        job.mark("load")
        job.check_cancelled()
        with _sagemaker_errors("CreateTrainingJob"):
            client.create_training_job(**create_request(plan, mapped, name, channels, base))
        job.report(2, _TOTAL, f"SageMaker training job {name} created")
        with _sagemaker_errors("DescribeTrainingJob"):
            described = track(job, client, name)
    finally:
        _delete_channels(storage, inputs)
    job.mark("fit")
    status = described.get("TrainingJobStatus")
    if status != "Completed":
        reason = str(described.get("FailureReason") or described.get("SecondaryStatus") or "")[:500]
        raise MLOpsError(
            f"SageMaker training job {name} ended {status}: {reason}",
            hint="See the job's CloudWatch logs (/aws/sagemaker/TrainingJobs) for the details.",
        )
    # Where SageMaker puts the model (<S3OutputPath>/<job>/output/): computed, so it stays in the folder.
    artifact = storage.join(base, name, "output", "model.tar.gz")
    cap = storage.config.max_bundle_bytes
    try:
        archive = storage.read_bytes(artifact, max_bytes=cap)
    except NotFoundError:
        raise MLOpsError(
            f"SageMaker training job {name} completed but wrote no model at {artifact.uri}",
            hint="Check that the image is SageMaker's built-in XGBoost (MLOPS_SAGEMAKER_IMAGE_URI).",
        ) from None
    classification = data.task_type == "classification"
    raw = read_model_member(archive, cap)
    model = load_model(storage, raw, data.task_type, len(data.classes or []), len(data.feature_names))
    job.report(8, _TOTAL, "scoring the SageMaker model")
    metrics: dict[str, Any] = supervised_metrics(model, data, label_encoded=classification, seed=plan.seed)
    reported = final_metrics(described)
    if reported:
        metrics["sagemaker"] = reported  # as the algorithm logged them ("validation:logloss", ...)
    job.mark("score")
    best = _best_iteration(model, mapped)
    record = {
        "training_job_name": name,
        "training_job_arn": described.get("TrainingJobArn"),
        "status": status,
        "secondary_status": described.get("SecondaryStatus"),
        "image": plan.image,
        "instance_type": plan.instance_type,
        "instance_count": plan.instance_count,
        "billable_seconds": described.get("BillableTimeInSeconds"),
        "model_artifact": artifact.uri,
        "hyperparameters": mapped,
    }
    meta = supervised_metadata(
        data,
        algorithm="xgboost",
        hyperparameters=plan.hyperparameters.model_dump(),
        metrics=metrics,
        history=list(job.history),
        seed=plan.seed,
        label_encoded=classification,
        libraries=("xgboost",),
        feature_importance=importance_dict(data.feature_names, model.feature_importances_),
        job_id=job.job_id,
        extra={"best_iteration": best, "backend": "sagemaker", "sagemaker": record},
    )
    final = publish_bundle(job, storage, model_loc, model, "xgboost", meta, _TOTAL, preprocessor=data.preprocessor)
    return supervised_result(data, final, best_iteration=best, sagemaker=record)


@contextlib.contextmanager
def _sagemaker_errors(operation: str) -> Iterator[None]:
    """SageMaker's refusals (AccessDenied, ResourceLimitExceeded, ValidationException) as clear errors."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise MLOpsError(
            f"SageMaker refused {operation}: {error.get('Code')}: {str(error.get('Message') or '')[:300]}",
            hint="Check the server's IAM permissions (README: Training backends), SAGEMAKER_ROLE_ARN and quotas.",
        ) from None
    except BotoCoreError as exc:
        raise MLOpsError(f"cannot reach SageMaker for {operation}: {exc}", hint="Check AWS_REGION.") from None


def _best_iteration(model: Any, hyperparameters: dict[str, str]) -> int | None:
    if "early_stopping_rounds" not in hyperparameters:
        return None
    value = model.get_booster().attr("best_iteration")
    return int(value) if value is not None else None


def _delete_channels(storage: S3Utils, prefix: Location) -> None:
    """The channels are a copy of the data: gone once the job has ended, whatever the outcome."""
    try:
        for loc in storage.list_objects(prefix):
            storage.delete(loc)
    except Exception:  # the job's outcome matters more than the cleanup; the log says what is left
        _log.warning("could not delete the SageMaker input channels under %s", prefix.uri, exc_info=True)
