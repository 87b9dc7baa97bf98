"""One settings object, read from environment variables (and command-line flags).

Every variable is documented in the README's table. `Config.from_env` raises `ConfigError` with
one clear line when a value is wrong; `__main__` prints that line and exits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mcp_server.common.exceptions import ConfigError
from mcp_server.common.outbound import email_address_problem, parse_allow_entries

CAPABILITY_NAMES = (
    "data_preparation",
    "ml_training",
    "ml_evaluation",
    "github_integration",
    "model_registry",
    "notification",
)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")  # what botocore accepts
_ENDPOINT = re.compile(r"^https?://[^\s/?#]+(/\S*)?$")
# SageMaker training (backend: sagemaker): the shapes CreateTrainingJob accepts, checked at start-up.
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
SAGEMAKER_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+$")
_IMAGE_URI = re.compile(r"^[a-z0-9.-]+(?::\d+)?/[a-z0-9._/-]+(?::[\w.-]+|@sha256:[0-9a-f]{64})?$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _default_storage_root() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("mlops-mcp", appauthor=False)) / "storage"


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; use {low}..{high}")
    return value


def _addresses(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    addresses = tuple(a.strip() for a in env.get(name, "").split(",") if a.strip())
    for address in addresses:
        problem = email_address_problem(address)
        if problem:
            raise ConfigError(f"{name}: {address!r} {problem}")
    return addresses


def _notification_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Issue 13's settings (README "Notifications")."""
    api_url = env.get("SLACK_API_URL") or "https://slack.com/api/"
    if not _ENDPOINT.match(api_url):
        raise ConfigError(f"SLACK_API_URL={api_url!r} is not an http(s) URL; use e.g. https://slack.com/api/")
    backend = (env.get("MLOPS_EMAIL_BACKEND") or "smtp").strip().lower()
    if backend not in ("smtp", "ses"):
        raise ConfigError(f"MLOPS_EMAIL_BACKEND={backend!r} is not smtp or ses")
    security = (env.get("SMTP_SECURITY") or "starttls").strip().lower()
    if security not in ("starttls", "ssl", "none"):
        raise ConfigError(f"SMTP_SECURITY={security!r} is not one of starttls, ssl, none")
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    senders = _addresses(env, "MLOPS_EMAIL_FROM")
    if len(senders) > 1:
        raise ConfigError("MLOPS_EMAIL_FROM must be one address")
    return {
        "slack_api_url": api_url if api_url.endswith("/") else api_url + "/",
        "slack_default_channel": (env.get("SLACK_DEFAULT_CHANNEL") or "").strip() or None,
        "email_backend": backend,
        "email_from": senders[0] if senders else None,
        "email_to": _addresses(env, "MLOPS_EMAIL_TO"),
        "smtp_host": (env.get("SMTP_HOST") or "").strip() or None,
        "smtp_port": _int(env, "SMTP_PORT", default_port, 1, 65535),
        "smtp_username": env.get("SMTP_USERNAME") or None,
        "smtp_security": security,
    }


def _seconds(env: Mapping[str, str], name: str, default: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not 0 <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; use 0..{high:g}")
    return value


# --- Remote use (issue 15) helpers ---------------------------------------------------------------
_ORIGIN = re.compile(r"^https?://[^\s/?#]+$")


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    origins = tuple(origin.rstrip("/").lower() for origin in _csv(env, "MLOPS_ALLOWED_ORIGINS"))
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ConfigError(
                f"MLOPS_ALLOWED_ORIGINS entry {origin!r} is not an origin; use scheme://host[:port], "
                "e.g. https://app.example.com"
            )
    return origins


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or choices[0]).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _sagemaker_settings(env: Mapping[str, str]) -> dict[str, Any]:
    checks = (
        ("SAGEMAKER_ROLE_ARN", _ROLE_ARN, "arn:aws:iam::123456789012:role/SageMakerTraining"),
        ("MLOPS_SAGEMAKER_INSTANCE_TYPE", SAGEMAKER_INSTANCE_TYPE, "ml.m5.xlarge"),
        ("MLOPS_SAGEMAKER_IMAGE_URI", _IMAGE_URI, "ACCOUNT.dkr.ecr.REGION.amazonaws.com/sagemaker-xgboost:3.0-5"),
    )
    values: dict[str, str | None] = {}
    for name, pattern, example in checks:
        value = (env.get(name) or "").strip() or None
        if value is not None and not pattern.match(value):
            raise ConfigError(f"{name}={value!r} is not valid; use e.g. {example}")
        values[name] = value
    return {
        "sagemaker_role_arn": values["SAGEMAKER_ROLE_ARN"],
        "sagemaker_instance_type": values["MLOPS_SAGEMAKER_INSTANCE_TYPE"] or "ml.m5.xlarge",
        "sagemaker_image_uri": values["MLOPS_SAGEMAKER_IMAGE_URI"],
    }


@dataclass(frozen=True)
class Config:
    s3_bucket: str | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    storage_root: Path = field(default_factory=_default_storage_root)
    secrets_prefix: str = "mlops/"
    kms_key_id: str | None = None
    log_level: str = "INFO"
    capabilities: tuple[str, ...] = CAPABILITY_NAMES
    read_only: bool = False
    max_concurrent_jobs: int = 1
    max_concurrent_pipelines: int = 2  # pipeline jobs only orchestrate: limited apart from training jobs
    max_concurrent_evaluations: int = 2  # evaluation jobs: limited apart, so they never queue behind training
    default_max_wait_seconds: float = 50.0
    max_dataset_bytes: int = 2 * 1024**3
    outbound_allow: tuple[str, ...] = ()  # normalised scheme://host:port entries (common/outbound.py)
    # --- notifications (issue 13). Destinations only: webhook URLs, the Slack bot token and the
    # SMTP password are secrets, read through SecretStore (Secrets Manager, then env) when sending.
    slack_api_url: str = "https://slack.com/api/"
    slack_default_channel: str | None = None
    email_backend: str = "smtp"  # smtp or ses
    email_from: str | None = None
    email_to: tuple[str, ...] = ()
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_security: str = "starttls"  # starttls, ssl or none
    # --- github_integration: API base URL (checked by common/outbound.py when the client is built),
    # the label that turns an issue into a training request, and PyGithub's request pacing (GitHub
    # asks for about 1 s between content-creating requests; tests set both to 0).
    github_api_url: str = "https://api.github.com"
    github_trigger_label: str = "mlops:train"
    github_seconds_between_requests: float = 0.25
    github_seconds_between_writes: float = 1.0
    # --- Remote use (issue 15): the HTTP transport, telemetry and CloudWatch Logs -------------
    http_token: str | None = field(default=None, repr=False)  # never in a repr, a log or a result
    allowed_hosts: tuple[str, ...] = ()  # empty: the bound address and localhost
    allowed_origins: tuple[str, ...] = ()  # empty: no browser origin is accepted
    http_max_body_bytes: int = 4 * 1024**2
    http_stateless: bool = False  # no session affinity: for several replicas behind a load balancer
    metrics: str = "emf"  # emf (stderr), cloudwatch (PutMetricData) or off
    cloudwatch_log_group: str | None = None
    cloudwatch_log_stream: str | None = None  # default: <host name>-<pid>
    # --- hardening (issue 9): storage and size guards
    extra_allowed_buckets: tuple[str, ...] = ()  # MLOPS_ALLOWED_BUCKETS besides MLOPS_S3_BUCKET
    allow_any_bucket: bool = False  # MLOPS_ALLOWED_BUCKETS=*
    max_classes: int = 1000  # MLOPS_MAX_CLASSES
    max_bundle_bytes: int = 2048 * 1024**2  # MLOPS_MAX_BUNDLE_MB

    @property
    def allowed_buckets(self) -> tuple[str, ...] | None:
        """Buckets an `s3://` URI may name; None means any."""
        if self.allow_any_bucket:
            return None
        return tuple(dict.fromkeys([*([self.s3_bucket] if self.s3_bucket else []), *self.extra_allowed_buckets]))

    # Ray for reinforcement learning (ml_training/rl/ray_runtime.py): RAY_ADDRESS joins that cluster;
    # unset, the server starts a Ray of its own with MLOPS_RAY_NUM_CPUS CPUs (None: all).
    ray_address: str | None = None
    ray_num_cpus: int | None = None
    # SageMaker training jobs (train_xgboost backend: sagemaker; ml_training/backends/sagemaker.py)
    sagemaker_role_arn: str | None = None
    sagemaker_instance_type: str = "ml.m5.xlarge"
    sagemaker_image_uri: str | None = None  # default: the built-in XGBoost image of the region

    @property
    def default_location(self) -> str:
        """Where plain keys go: the bucket when one is set, else the local storage root."""
        return f"s3://{self.s3_bucket}" if self.s3_bucket else "local"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Config:
        env = os.environ if env is None else env
        bucket = env.get("MLOPS_S3_BUCKET") or None
        if bucket and not _BUCKET.match(bucket):
            raise ConfigError(f"MLOPS_S3_BUCKET={bucket!r} is not a valid S3 bucket name")
        root_raw = env.get("MLOPS_STORAGE_ROOT")
        root = Path(root_raw).expanduser() if root_raw else _default_storage_root()
        if root_raw and not root.is_absolute():
            root = root.resolve()
        if root.exists() and not root.is_dir():
            raise ConfigError(f"MLOPS_STORAGE_ROOT={str(root)!r} is a file, not a directory")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        if not _REGION.match(region):
            raise ConfigError(f"AWS_REGION={region!r} is not a region name; use e.g. us-east-1")
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        if endpoint and not _ENDPOINT.match(endpoint):
            raise ConfigError(f"AWS_ENDPOINT_URL={endpoint!r} is not an http(s) URL; use e.g. http://localhost:9000")
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in _LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL={level!r} is not one of {', '.join(_LOG_LEVELS)}")
        caps_raw = env.get("MLOPS_CAPABILITIES", "").strip()
        capabilities: tuple[str, ...] = CAPABILITY_NAMES
        if caps_raw and caps_raw.lower() != "all":
            wanted = tuple(c.strip() for c in caps_raw.split(",") if c.strip())
            unknown = [c for c in wanted if c not in CAPABILITY_NAMES]
            if unknown:
                raise ConfigError(
                    f"MLOPS_CAPABILITIES names unknown capabilities {unknown}; "
                    f"choose from {', '.join(CAPABILITY_NAMES)}"
                )
            capabilities = tuple(c for c in CAPABILITY_NAMES if c in wanted)
        cpus = os.cpu_count() or 2
        # github_integration (the API URL's host is checked against the outbound policy when used)
        github_api_url = (env.get("GITHUB_API_URL") or "https://api.github.com").strip().rstrip("/")
        if not _ENDPOINT.match(github_api_url):
            raise ConfigError(f"GITHUB_API_URL={github_api_url!r} is not an http(s) URL; use e.g. https://HOST/api/v3")
        trigger_label = (env.get("MLOPS_GITHUB_TRIGGER_LABEL") or "mlops:train").strip()
        if len(trigger_label) > 50:
            raise ConfigError("MLOPS_GITHUB_TRIGGER_LABEL is longer than GitHub's 50-character label limit")
        # --- hardening (issue 9)
        buckets_raw = env.get("MLOPS_ALLOWED_BUCKETS", "").strip()
        extra_buckets = tuple(b.strip() for b in buckets_raw.split(",") if b.strip() and b.strip() != "*")
        bad = [b for b in extra_buckets if not _BUCKET.match(b)]
        if bad:
            raise ConfigError(
                f"MLOPS_ALLOWED_BUCKETS names invalid bucket names {bad}; use a comma-separated list or *"
            )
        config = cls(
            s3_bucket=bucket,
            aws_region=region,
            aws_endpoint_url=endpoint,
            storage_root=root,
            secrets_prefix=env.get("MLOPS_SECRETS_PREFIX", "mlops/"),
            kms_key_id=env.get("MLOPS_KMS_KEY_ID") or None,
            log_level=level,
            capabilities=capabilities,
            read_only=_flag(env, "MLOPS_READ_ONLY", False),
            max_concurrent_jobs=_int(env, "MLOPS_MAX_CONCURRENT_JOBS", max(1, cpus // 2), 1, 64),
            max_concurrent_pipelines=_int(env, "MLOPS_MAX_CONCURRENT_PIPELINES", 2, 1, 64),
            max_concurrent_evaluations=_int(env, "MLOPS_MAX_CONCURRENT_EVALUATIONS", 2, 1, 64),
            default_max_wait_seconds=float(_int(env, "MLOPS_MAX_WAIT_SECONDS", 50, 0, 3600)),
            max_dataset_bytes=_int(env, "MLOPS_MAX_DATASET_MB", 2048, 1, 1024 * 1024) * 1024**2,
            outbound_allow=parse_allow_entries(env.get("MLOPS_OUTBOUND_ALLOW", "")),
            **_notification_settings(env),
            # --- github_integration
            github_api_url=github_api_url,
            github_trigger_label=trigger_label,
            github_seconds_between_requests=_seconds(env, "MLOPS_GITHUB_SECONDS_BETWEEN_REQUESTS", 0.25, 60),
            github_seconds_between_writes=_seconds(env, "MLOPS_GITHUB_SECONDS_BETWEEN_WRITES", 1.0, 60),
            # --- Remote use (issue 15) ---------------------------------------------------------
            http_token=env.get("MLOPS_HTTP_TOKEN") or None,
            allowed_hosts=_csv(env, "MLOPS_ALLOWED_HOSTS"),
            allowed_origins=_origins(env),
            http_max_body_bytes=_int(env, "MLOPS_HTTP_MAX_BODY_MB", 4, 1, 1024) * 1024**2,
            http_stateless=_flag(env, "MLOPS_HTTP_STATELESS", False),
            metrics=_choice(env, "MLOPS_METRICS", ("emf", "cloudwatch", "off")),
            cloudwatch_log_group=env.get("CLOUDWATCH_LOG_GROUP") or None,
            cloudwatch_log_stream=env.get("CLOUDWATCH_LOG_STREAM") or None,
            extra_allowed_buckets=extra_buckets,
            allow_any_bucket=buckets_raw == "*",
            max_classes=_int(env, "MLOPS_MAX_CLASSES", 1000, 2, 1_000_000),
            max_bundle_bytes=_int(env, "MLOPS_MAX_BUNDLE_MB", 2048, 1, 1024 * 1024) * 1024**2,
            # Ray (reinforcement learning): the cluster to join, or the size of the server's own Ray.
            ray_address=(env.get("RAY_ADDRESS") or "").strip() or None,
            ray_num_cpus=_int(env, "MLOPS_RAY_NUM_CPUS", 0, 1, 1024) or None,
            **_sagemaker_settings(env),
        )
        return replace(config, **overrides) if overrides else config  # type: ignore[arg-type]
