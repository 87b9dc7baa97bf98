"""train_xgboost with backend "sagemaker" (ml_training/backends/sagemaker.py).

moto 5.2 records CreateTrainingJob and answers DescribeTrainingJob, but completes every job at once,
writes no model and has no StopTrainingJob. So the tests play the training container themselves:
a botocore event hook on the server's own SageMaker client, called after CreateTrainingJob, reads
the channels back from the bucket exactly as the built-in algorithm does (XGBoost's CSV reader,
label column 0), trains on them with the request's hyperparameters and writes
`<output>/<job>/output/model.tar.gz`. Cancelling needs a job that is still running and
StopTrainingJob: there a real boto3 client with botocore's Stubber answers, and the Stubber
validates every request (StopTrainingJob included) against the real SageMaker service model.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest

from mcp_server.capabilities.ml_training.backends import sagemaker as sm
from mcp_server.common.bundles import read_bundle
from mcp_server.common.exceptions import BadFormatError, ConfigError, InvalidInputError
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import BUCKET, make_router
from tests.helpers import call, call_error, poll_job, router_caller, until
from tests.ml_training.conftest import frames

# The test container reads CSV the way the built-in algorithm does, which XGBoost 3.1+ deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:.*Text file input has been deprecated")
ROLE = "arn:aws:iam::123456789012:role/mlops-training"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def sm_config(storage_root: Path, **extra: str) -> Config:
    env = {"MLOPS_S3_BUCKET": BUCKET, "MLOPS_STORAGE_ROOT": str(storage_root), "AWS_REGION": "us-east-1"}
    return Config.from_env({**env, "SAGEMAKER_ROLE_ARN": ROLE, **extra})


@pytest.fixture
def router(aws: Any, storage_root: Path) -> ToolRouter:
    return make_router(sm_config(storage_root))


def keys(s3: Any, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def model_archive(member: bytes, name: str = sm.MODEL_MEMBER) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    return buffer.getvalue()


class Container:
    """What the built-in XGBoost algorithm does with a training job, run by the test when the
    server creates one: read the channels, train, save `xgboost-model` (UBJSON) in model.tar.gz."""

    def __init__(self, s3: Any, tmp: Path) -> None:
        self.s3, self._tmp = s3, tmp
        self._name = ""
        self.jobs: list[dict[str, Any]] = []  # DescribeTrainingJob as moto recorded each job
        self.channels: dict[str, str] = {}  # channel -> the CSV text the algorithm read
        self.files: dict[str, list[str]] = {}  # channel -> its file names

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.sagemaker.CreateTrainingJob", self._capture)
        client.meta.events.register("after-call.sagemaker.CreateTrainingJob", self._run)

    def _capture(self, params: dict[str, Any], **kwargs: Any) -> None:
        self._name = params["TrainingJobName"]

    def _read(self, channel: str, uri: str) -> str:
        """The channel's files, in key order (each instance reads its share when sharded)."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        files = [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        self.files[channel] = [key.removeprefix(prefix) for key in files]
        return "".join(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode() for key in files)

    def _run(self, **kwargs: Any) -> None:
        import xgboost as xgb

        name = self._name
        described = boto3.client("sagemaker", region_name="us-east-1").describe_training_job(TrainingJobName=name)
        self.jobs.append(described)
        matrices = {}
        for channel in described["InputDataConfig"]:
            text = self._read(channel["ChannelName"], channel["DataSource"]["S3DataSource"]["S3Uri"])
            self.channels[channel["ChannelName"]] = text
            path = self._tmp / f"{channel['ChannelName']}.csv"
            path.write_text(text)
            matrices[channel["ChannelName"]] = xgb.DMatrix(f"{path}?format=csv&label_column=0")
        hp = dict(described["HyperParameters"])
        rounds = int(hp.pop("num_round"))
        stopping = hp.pop("early_stopping_rounds", None)
        evals = [(m, n) for n, m in matrices.items()]
        booster = xgb.train(
            hp,
            matrices["train"],
            rounds,
            evals=evals,
            early_stopping_rounds=int(stopping) if stopping else None,
            verbose_eval=False,
        )
        model = self._tmp / sm.MODEL_MEMBER
        booster.save_model(str(model.with_suffix(".ubj")))
        artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, _, key = artifact.removeprefix("s3://").partition("/")
        assert key == described["OutputDataConfig"]["S3OutputPath"].split("/", 3)[3] + f"/{name}/output/model.tar.gz"
        self.s3.put_object(Bucket=bucket, Key=key, Body=model_archive(model.with_suffix(".ubj").read_bytes()))


@pytest.fixture
def container(router: ToolRouter, aws: Any, tmp_path: Path) -> Container:
    box = Container(aws, tmp_path)
    box.attach(router.services.aws("sagemaker"))
    return box


def sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def put(router: ToolRouter, frame: pd.DataFrame, key: str) -> str:
    router.storage.write_dataframe(frame, router.storage.resolve(key))
    return key


# ------------------------------------------------------------------------------ the whole call
async def test_train_on_sagemaker_writes_channels_tracks_and_bundles(
    router: ToolRouter, container: Container, aws: Any
) -> None:
    data = put(router, frames()["breast_cancer"], "data/bc.parquet")
    out = await call(
        router,
        "train_xgboost",
        train_data_s3_uri=data,
        target_column="target",
        model_output_s3_uri="models/bc-sm",
        backend="sagemaker",
        validation_fraction=0.25,
        random_state=3,
        hyperparameters={"n_estimators": 30, "max_depth": 3, "learning_rate": 0.2},
    )
    assert out["status"] == "succeeded", out
    # CreateTrainingJob as moto recorded it
    (job,) = container.jobs
    name = out["sagemaker"]["training_job_name"]
    assert job["TrainingJobName"] == name and name.startswith("mlops-job-")
    assert job["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "File",
        **({"MetricDefinitions": job["AlgorithmSpecification"]["MetricDefinitions"]}),
    }
    assert job["RoleArn"] == ROLE
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge" and job["ResourceConfig"]["InstanceCount"] == 1
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/models/bc-sm/sagemaker"
    hp = job["HyperParameters"]
    assert hp["objective"] == "binary:logistic" and hp["eval_metric"] == "logloss"
    assert (hp["num_round"], hp["max_depth"], hp["eta"], hp["seed"]) == ("30", "3", "0.2", "3")
    assert hp["early_stopping_rounds"] == "10"  # validation data: the local default applies
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    assert {c["ContentType"] for c in channels.values()} == {"text/csv"}
    prefix = f"s3://{BUCKET}/models/bc-sm/sagemaker/{name}/input/"
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == prefix + "train/"
    assert {c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in channels.values()} == {"FullyReplicated"}
    assert container.files == {"train": ["train-0000.csv"], "validation": ["validation-0000.csv"]}
    # The channels as the algorithm read them: CSV, label first (0/1), no header, all features.
    train = pd.read_csv(io.StringIO(container.channels["train"]), header=None)
    validation = pd.read_csv(io.StringIO(container.channels["validation"]), header=None)
    source = frames()["breast_cancer"]
    assert train.shape[1] == source.shape[1] and not isinstance(train.iloc[0, 0], str)
    assert (len(train), len(validation)) == (out["n_train_rows"], out["n_validation_rows"])
    assert set(train[0]) == {0, 1} and len(train) + len(validation) == len(source)
    # every source row, label first, is in exactly one channel
    rows = np.vstack([train.to_numpy(np.float32), validation.to_numpy(np.float32)])
    expected = source[["target", *[c for c in source.columns if c != "target"]]].to_numpy(np.float32)
    assert np.allclose(sorted_rows(rows), sorted_rows(expected))
    # Tracking: the job's history carries the secondary status transitions; metrics DescribeTrainingJob's.
    assert out["history"][0]["secondary_status"] == "Starting"
    assert out["metrics"]["sagemaker"] == {"train:progress": 100.0}  # what moto reports
    assert out["metrics"]["validation"]["accuracy"] > 0.9
    # The channels (a copy of the data) are gone; the SageMaker output stays beside the bundle.
    assert keys(aws, f"models/bc-sm/sagemaker/{name}/input/") == []
    assert f"models/bc-sm/sagemaker/{name}/output/model.tar.gz" in keys(aws)
    # The bundle is an ordinary XGBoost bundle: evaluation and metrics read it.
    bundle = read_bundle(router.storage, out["model_s3_uri"])
    assert bundle.metadata["family"] == "xgboost" and bundle.metadata["backend"] == "sagemaker"
    assert bundle.metadata["classes"] == [0, 1] and bundle.metadata["label_encoded"] is True
    assert bundle.metadata["feature_names"] == [c for c in source.columns if c != "target"]
    test = put(router, source.sample(120, random_state=1), "data/bc-test.parquet")
    evaluated = await call(router, "evaluate_classifier", model_s3_uri=out["model_s3_uri"], test_data_s3_uri=test)
    assert evaluated["metrics"]["accuracy"] > 0.9
    polled = await call(router, "get_training_metrics", job_id=out["job_id"])
    assert polled["status"] == "succeeded" and polled["result"]["sagemaker"]["status"] == "Completed"


async def test_sagemaker_encodes_classes_and_applies_the_preprocessing(
    router: ToolRouter, container: Container
) -> None:
    iris = frames()["iris"].copy()
    names = np.array(["virginica", "setosa", "versicolor"])  # not in sorted order on purpose
    iris["species"] = names[iris.pop("target")]
    raw = put(router, iris, "data/iris-raw.parquet")
    processed = await call(
        router,
        "preprocess_supervised",
        dataset_s3_uri=raw,
        target_column="species",
        task_type="classification",
        preprocessing_config={"normalize": True},
        output_s3_uri="data/iris-processed.parquet",
    )
    out = await call(
        router,
        "train_xgboost",
        train_data_s3_uri=processed["output_s3_uri"],
        target_column="species",
        model_output_s3_uri="models/iris-sm",
        backend="sagemaker",
        instance_type="ml.c5.2xlarge",
        instance_count=2,
        random_state=0,
        hyperparameters={"n_estimators": 15},
    )
    (job,) = container.jobs
    assert job["ResourceConfig"]["InstanceType"] == "ml.c5.2xlarge" and job["ResourceConfig"]["InstanceCount"] == 2
    hp = job["HyperParameters"]
    assert (hp["objective"], hp["num_class"], hp["eval_metric"]) == ("multi:softprob", "3", "mlogloss")
    assert "early_stopping_rounds" not in hp and [c["ChannelName"] for c in job["InputDataConfig"]] == ["train"]
    # two instances: the train channel is two files, one per instance
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert container.files["train"] == ["train-0000.csv", "train-0001.csv"]
    train = pd.read_csv(io.StringIO(container.channels["train"]), header=None)
    # labels as local training encodes them: indices into the sorted classes
    assert out["classes"] == ["setosa", "versicolor", "virginica"]
    expected = np.searchsorted(np.array(out["classes"]), iris["species"].to_numpy())
    assert (train[0].to_numpy() == expected).all()
    # features as local training sees them: the processed (normalized) data, not the raw values
    seen = router.storage.read_dataframe(router.storage.resolve(processed["output_s3_uri"]))
    seen_features = seen.drop(columns="species").to_numpy(np.float32)
    assert np.allclose(sorted_rows(train.iloc[:, 1:].to_numpy(np.float32)), sorted_rows(seen_features), atol=1e-6)
    assert not np.allclose(sorted_rows(seen_features), sorted_rows(iris.drop(columns="species").to_numpy(np.float32)))
    bundle = read_bundle(router.storage, out["model_s3_uri"])
    assert bundle.metadata["has_preprocessor"] is True and bundle.preprocessor is not None
    evaluated = await call(
        router, "evaluate_classifier", model_s3_uri=out["model_s3_uri"], test_data_s3_uri=processed["output_s3_uri"]
    )
    assert evaluated["metrics"]["accuracy"] > 0.9


async def test_sagemaker_regression_with_a_validation_file(router: ToolRouter, container: Container) -> None:
    diabetes = frames()["diabetes"]
    train = put(router, diabetes.iloc[:350], "data/diabetes-train.parquet")
    validation = put(router, diabetes.iloc[350:], "data/diabetes-validation.parquet")
    out = await call(
        router,
        "train_xgboost",
        train_data_s3_uri=train,
        validation_data_s3_uri=validation,
        target_column="target",
        task_type="regression",
        model_output_s3_uri="models/diabetes-sm",
        backend="sagemaker",
        random_state=1,
        hyperparameters={"n_estimators": 40, "max_depth": 2, "learning_rate": 0.1, "early_stopping_rounds": 5},
    )
    (job,) = container.jobs
    hp = job["HyperParameters"]
    assert (hp["objective"], hp["eval_metric"], hp["early_stopping_rounds"]) == ("reg:squarederror", "rmse", "5")
    assert "num_class" not in hp and "scale_pos_weight" not in hp
    labels = pd.read_csv(io.StringIO(container.channels["validation"]), header=None)[0].to_numpy()
    assert np.allclose(labels, diabetes["target"].iloc[350:].to_numpy())  # the file's rows, label first
    assert out["n_validation_rows"] == len(diabetes) - 350 and out["task_type"] == "regression"
    assert out["best_iteration"] is not None and out["best_iteration"] < 40
    evaluated = await call(router, "evaluate_regressor", model_s3_uri=out["model_s3_uri"], test_data_s3_uri=validation)
    assert abs(evaluated["metrics"]["r2"] - out["metrics"]["validation"]["r2"]) < 1e-6
    assert evaluated["metrics"]["r2"] > 0.2


# ------------------------------------------------------------------------------ refusals
async def test_sagemaker_refuses_local_storage_and_a_missing_role_before_any_upload(
    aws: Any, storage_root: Path
) -> None:
    local = make_router(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "SAGEMAKER_ROLE_ARN": ROLE}))
    put(local, frames()["iris"], "data/iris.parquet")
    args = {
        "train_data_s3_uri": "data/iris.parquet",
        "target_column": "target",
        "model_output_s3_uri": "models/m",
        "backend": "sagemaker",
    }
    message = await call_error(local, "train_xgboost", **args)
    assert "model_output_s3_uri" in message and "s3://" in message and "SageMaker" in message
    no_role = make_router(Config.from_env({"MLOPS_S3_BUCKET": BUCKET, "MLOPS_STORAGE_ROOT": str(storage_root)}))
    put(no_role, frames()["iris"], "data/iris.parquet")
    before = keys(aws)
    message = await call_error(no_role, "train_xgboost", **args)
    assert "SAGEMAKER_ROLE_ARN" in message
    assert keys(aws) == before  # no channel, no job record
    assert boto3.client("sagemaker", region_name="us-east-1").list_training_jobs()["TrainingJobSummaries"] == []


async def test_sagemaker_refusals_name_the_field(router: ToolRouter) -> None:
    put(router, frames()["iris"], "data/iris.parquet")
    args = {"train_data_s3_uri": "data/iris.parquet", "target_column": "target", "model_output_s3_uri": "models/m"}
    message = await call_error(router, "train_xgboost", backend="sagemaker", instance_type="m5.large", **args)
    assert "instance_type" in message and "ml.m5.xlarge" in message
    message = await call_error(
        router,
        "train_xgboost",
        backend="sagemaker",
        target_column="nope",
        **{k: v for k, v in args.items() if k != "target_column"},
    )
    assert "nope" in message
    message = await call_error(
        router, "train_xgboost", backend="sagemaker", instance_count=2, hyperparameters={"tree_method": "exact"}, **args
    )
    assert "hyperparameters.tree_method" in message
    message = await call_error(router, "train_xgboost", instance_type="ml.m5.large", **args)
    assert "instance_type applies to backend 'sagemaker' only" in message
    message = await call_error(router, "train_neural_network", backend="sagemaker", **args)
    assert "backend" in message and "'local'" in message and "'ray'" in message


def test_image_uri_from_the_region_table_or_the_override() -> None:
    assert sm.image_uri("us-east-1", None) == IMAGE
    assert sm.image_uri("eu-west-1", None) == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    assert sm.image_uri("cn-north-1", None).startswith("450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    with pytest.raises(InvalidInputError, match="MLOPS_SAGEMAKER_IMAGE_URI"):
        sm.image_uri("xx-nowhere-1", None)
    custom = "111122223333.dkr.ecr.xx-nowhere-1.amazonaws.com/my-xgboost:2"
    assert sm.image_uri("xx-nowhere-1", custom) == custom
    with pytest.raises(InvalidInputError, match="deprecated binary") as refused:
        sm.image_uri("us-east-1", IMAGE.replace("3.0-5", "1.7-1"))
    assert "3.0-5" in (refused.value.hint or "")


def test_settings_are_checked_at_start_up(storage_root: Path) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})
    assert (config.sagemaker_role_arn, config.sagemaker_instance_type) == (None, "ml.m5.xlarge")
    for name, bad in (
        ("SAGEMAKER_ROLE_ARN", "my-role"),
        ("MLOPS_SAGEMAKER_INSTANCE_TYPE", "m5.xlarge"),
        ("MLOPS_SAGEMAKER_IMAGE_URI", "not an image"),
    ):
        with pytest.raises(ConfigError, match=name):
            Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), name: bad})
    set_ = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_SAGEMAKER_INSTANCE_TYPE": "ml.g5.2xlarge"})
    assert set_.sagemaker_instance_type == "ml.g5.2xlarge"


# ------------------------------------------------------------------------------ cancel and failure
@pytest.fixture
def stubbed(router: ToolRouter) -> Iterator[Any]:
    """A real SageMaker client answered by botocore's Stubber (which checks each request against
    the service model) in place of the server's: moto cannot keep a job running, nor stop one."""
    from botocore.stub import Stubber

    client = boto3.client("sagemaker", region_name="us-east-1")
    router.services._aws["sagemaker"] = client
    with Stubber(client) as stubber:
        yield stubber


def described(name: str, status: str, secondary: str, **extra: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "SecondaryStatusTransitions": [{"Status": s, "StartTime": now} for s in ("Starting", secondary)],
        "FinalMetricDataList": [{"MetricName": "train:logloss", "Value": 0.25, "Timestamp": now}],
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": now,
        "ModelArtifacts": {"S3ModelArtifacts": "s3://x/y/model.tar.gz"},
        **extra,
    }


def record_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    client.meta.events.register(f"provide-client-params.sagemaker.{operation}", lambda params, **_: seen.append(params))
    return seen


async def test_cancel_stops_the_sagemaker_job_and_publishes_nothing(router: ToolRouter, stubbed: Any, aws: Any) -> None:
    put(router, frames()["iris"], "data/iris.parquet")
    stops = record_calls(stubbed.client, "StopTrainingJob")
    # The job's name comes from its id, known only once it started: the answers name a stand-in.
    stubbed.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"})
    stubbed.add_response("describe_training_job", described("stand-in", "InProgress", "Training"))
    stubbed.add_response("stop_training_job", {})
    started = await call(
        router,
        "train_xgboost",
        train_data_s3_uri="data/iris.parquet",
        target_column="target",
        model_output_s3_uri="models/cancelled",
        backend="sagemaker",
        wait=False,
    )
    name = sm.training_job_name(started["job_id"])
    # while it runs, get_training_metrics shows SageMaker's status, secondary status and metrics
    await until(lambda: "Training" in str(router.services.jobs.read(started["job_id"])["progress"]["message"]))
    running = await call(router, "get_training_metrics", job_id=started["job_id"])
    assert running["status"] == "running"
    live = running["metrics"]["sagemaker"]
    assert (live["status"], live["secondary_status"], live["train:logloss"]) == ("InProgress", "Training", 0.25)
    assert [h["secondary_status"] for h in running["history"]] == ["Starting", "Training"]
    cancelled = await call(router, "cancel_training_job", job_id=started["job_id"])
    assert cancelled["status"] == "cancelled", cancelled
    stubbed.assert_no_pending_responses()
    assert stops == [{"TrainingJobName": name}]  # and the Stubber found the request valid for the API
    ended = await call(router, "get_training_metrics", job_id=started["job_id"])
    assert ended["status"] == "cancelled" and name in ended["error"]
    assert keys(aws, "models/cancelled") == []  # no channel left, no bundle


async def test_a_failed_sagemaker_job_reports_its_reason(router: ToolRouter, stubbed: Any, aws: Any) -> None:
    put(router, frames()["iris"], "data/iris.parquet")
    creates = record_calls(stubbed.client, "CreateTrainingJob")
    failure = "ClientError: instance type ml.m5.xlarge is not available"
    stubbed.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"})
    stubbed.add_response("describe_training_job", described("stand-in", "Failed", "Failed", FailureReason=failure))
    started = await call(
        router,
        "train_xgboost",
        train_data_s3_uri="data/iris.parquet",
        target_column="target",
        model_output_s3_uri="models/failed",
        backend="sagemaker",
        wait=False,
    )
    ended = await poll_job(router_caller(router), started["job_id"])
    name = sm.training_job_name(started["job_id"])
    assert ended["status"] == "failed" and failure in ended["error"] and name in ended["error"]
    assert [c["TrainingJobName"] for c in creates] == [name]
    assert keys(aws, "models/failed") == []


# ------------------------------------------------------------------------------ the artifact
def _booster(objective: str = "binary:logistic", features: int = 4) -> Any:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.random((60, features)).astype(np.float32)
    return xgb.train({"objective": objective}, xgb.DMatrix(x, label=(x[:, 0] > 0.5).astype(int)), 3)


def _raw(booster: Any, raw_format: str = "ubj") -> bytes:
    return bytes(booster.save_raw(raw_format))


def test_artifact_ubjson_and_json_load_as_the_task_expects(router: ToolRouter) -> None:
    booster = _booster()
    for raw_format in ("ubj", "json"):
        raw = sm.read_model_member(model_archive(_raw(booster, raw_format)), 10**7)
        model = sm.load_model(router.storage, raw, "classification", 2, 4)
        assert model.predict_proba(np.zeros((1, 4), np.float32)).shape == (1, 2)
    with pytest.raises(BadFormatError, match="does not match"):
        sm.load_model(router.storage, _raw(booster), "classification", 2, 5)
    with pytest.raises(BadFormatError, match="does not match"):
        sm.load_model(router.storage, _raw(booster), "regression", 0, 4)


def test_artifact_pickle_legacy_and_garbage_are_refused(router: ToolRouter) -> None:
    import pickle

    with pytest.raises(BadFormatError, match="pickle"):
        sm.load_model(router.storage, pickle.dumps({"model": 1}), "classification", 2, 4)
    # XGBoost's deprecated binary format opens with LearnerModelParam (a float base_score), not '{'
    legacy = np.float32(0.5).tobytes() + np.uint32(4).tobytes() + b"\x00" * 120 + b"binary:logistic"
    with pytest.raises(BadFormatError, match="deprecated binary") as refused:
        sm.load_model(router.storage, legacy, "classification", 2, 4)
    assert "3.0-5" in (refused.value.hint or "")
    with pytest.raises(BadFormatError, match="not a readable XGBoost model"):
        sm.load_model(router.storage, b"{ this is no model", "classification", 2, 4)
    with pytest.raises(BadFormatError, match="gzip tar"):
        sm.read_model_member(b"not a tar", 10**6)
    with pytest.raises(BadFormatError, match="holds no xgboost-model"):
        sm.read_model_member(model_archive(b"{}", "other-file"), 10**6)


def test_artifact_with_traversal_links_or_too_much_content_is_refused() -> None:
    raw = _raw(_booster())
    for name in ("../xgboost-model", "/etc/xgboost-model", "a/../../xgboost-model"):
        with pytest.raises(BadFormatError, match="outside its folder"):
            sm.read_model_member(model_archive(raw, name), 10**7)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo(sm.MODEL_MEMBER)
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(BadFormatError, match="link or special file"):
        sm.read_model_member(buffer.getvalue(), 10**7)
    with pytest.raises(BadFormatError, match="MLOPS_MAX_BUNDLE_MB"):
        sm.read_model_member(model_archive(raw), len(raw) - 1)
    assert sm.read_model_member(model_archive(raw, "./xgboost-model"), len(raw)) == raw
    # many entries, each under the cap, that together expand past it
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for index in range(3):
            info = tarfile.TarInfo(f"padding-{index}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(b"\0" * len(raw)))
        info = tarfile.TarInfo(sm.MODEL_MEMBER)
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    with pytest.raises(BadFormatError, match="expands past"):
        sm.read_model_member(buffer.getvalue(), 2 * len(raw))


def test_hyperparameters_map_to_the_algorithm_names() -> None:
    from mcp_server.capabilities.ml_training.data import SupervisedData
    from mcp_server.capabilities.ml_training.schemas import XGBoostHyperparameters

    x = np.zeros((4, 2), np.float32)
    data = SupervisedData(x, np.array([0, 1, 0, 1]), None, None, "regression", "t", ["a", "b"], {}, None, "u", "f")
    hp = XGBoostHyperparameters(n_estimators=7, reg_alpha=0.5, reg_lambda=2.0, n_jobs=3, scale_pos_weight=4.0)
    mapped = sm.algorithm_hyperparameters(hp, data, 11, 1)
    assert mapped["objective"] == "reg:squarederror" and mapped["eval_metric"] == "rmse"
    assert (mapped["num_round"], mapped["alpha"], mapped["lambda"], mapped["nthread"]) == ("7", "0.5", "2.0", "3")
    assert "scale_pos_weight" not in mapped and "early_stopping_rounds" not in mapped  # no validation data
    assert all(isinstance(v, str) for v in mapped.values())
    data.task_type, data.classes = "classification", [0, 1]
    assert sm.algorithm_hyperparameters(hp, data, 11, 1)["scale_pos_weight"] == "4.0"
    assert json.dumps(mapped)  # CreateTrainingJob takes a map of strings
    with pytest.raises(InvalidInputError, match="float32"):
        sm.algorithm_hyperparameters(XGBoostHyperparameters(gamma=1e300), data, 11, 1)
    with pytest.raises(InvalidInputError, match="instance_count 5"):
        sm.algorithm_hyperparameters(hp, data, 11, 5)


async def test_sagemaker_refusing_the_job_or_writing_no_model_is_a_clear_error(router: ToolRouter, aws: Any) -> None:
    put(router, frames()["iris"], "data/iris.parquet")
    args = {
        "train_data_s3_uri": "data/iris.parquet",
        "target_column": "target",
        "model_output_s3_uri": "models/nothing",
        "backend": "sagemaker",
    }
    # moto completes the job at once and, with no container playing it here, writes no model
    message = await call_error(router, "train_xgboost", **args)
    assert "completed but wrote no model" in message and "model.tar.gz" in message
    assert not any(k.endswith("metadata.json") or "/input/" in k for k in keys(aws, "models/nothing"))


async def test_sagemaker_client_errors_are_reported_not_raised(router: ToolRouter, stubbed: Any, aws: Any) -> None:
    put(router, frames()["iris"], "data/iris.parquet")
    stubbed.add_client_error("create_training_job", "ResourceLimitExceeded", "account-level service limit exceeded")
    message = await call_error(
        router,
        "train_xgboost",
        train_data_s3_uri="data/iris.parquet",
        target_column="target",
        model_output_s3_uri="models/limited",
        backend="sagemaker",
    )
    assert "CreateTrainingJob" in message and "ResourceLimitExceeded" in message and "Traceback" not in message
    assert keys(aws, "models/limited") == []  # the channels written for it are gone
