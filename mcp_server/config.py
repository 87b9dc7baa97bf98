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

from mcp_server.common.exceptions import ConfigError
from mcp_server.common.outbound import parse_allow_entries

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
    default_max_wait_seconds: float = 50.0
    max_dataset_bytes: int = 2 * 1024**3
    outbound_allow: tuple[str, ...] = ()  # normalised scheme://host:port entries (common/outbound.py)
    # Ray for reinforcement learning (ml_training/rl/ray_runtime.py): RAY_ADDRESS joins that cluster;
    # unset, the server starts a Ray of its own with MLOPS_RAY_NUM_CPUS CPUs (None: all).
    ray_address: str | None = None
    ray_num_cpus: int | None = None

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
            default_max_wait_seconds=float(_int(env, "MLOPS_MAX_WAIT_SECONDS", 50, 0, 3600)),
            max_dataset_bytes=_int(env, "MLOPS_MAX_DATASET_MB", 2048, 1, 1024 * 1024) * 1024**2,
            outbound_allow=parse_allow_entries(env.get("MLOPS_OUTBOUND_ALLOW", "")),
            # Ray (reinforcement learning): the cluster to join, or the size of the server's own Ray.
            ray_address=(env.get("RAY_ADDRESS") or "").strip() or None,
            ray_num_cpus=_int(env, "MLOPS_RAY_NUM_CPUS", 0, 1, 1024) or None,
        )
        return replace(config, **overrides) if overrides else config  # type: ignore[arg-type]
