"""Config: every variable of the README table, one clear line per bad value, and the filters
(MLOPS_CAPABILITIES, MLOPS_READ_ONLY) as the server applies them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from mcp_server.common.exceptions import ConfigError
from mcp_server.config import CAPABILITY_NAMES, Config
from mcp_server.server import UnifiedMLOpsMCPServer

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_without_any_variable() -> None:
    config = Config.from_env({})
    assert config.s3_bucket is None
    assert config.aws_region == "us-east-1"
    assert config.aws_endpoint_url is None
    assert config.storage_root.is_absolute() and config.storage_root.name == "storage"
    assert config.secrets_prefix == "mlops/"
    assert config.kms_key_id is None
    assert config.log_level == "INFO"
    assert config.capabilities == CAPABILITY_NAMES
    assert config.read_only is False
    assert config.max_concurrent_jobs == max(1, (os.cpu_count() or 2) // 2)
    assert config.default_max_wait_seconds == 50.0
    assert config.max_dataset_bytes == 2048 * 1024**2
    assert config.default_location == "local"


def test_every_variable_is_parsed(tmp_path: Path) -> None:
    env = {
        "MLOPS_S3_BUCKET": "my-ml-bucket",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "ap-south-1",  # AWS_REGION wins
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "MLOPS_STORAGE_ROOT": str(tmp_path / "root"),
        "MLOPS_SECRETS_PREFIX": "team-a/",
        "MLOPS_KMS_KEY_ID": "arn:aws:kms:eu-west-1:111122223333:key/abc",
        "LOG_LEVEL": "debug",
        "MLOPS_CAPABILITIES": " ml_training , data_preparation ",
        "MLOPS_READ_ONLY": "yes",
        "MLOPS_MAX_CONCURRENT_JOBS": "3",
        "MLOPS_MAX_WAIT_SECONDS": "20",
        "MLOPS_MAX_DATASET_MB": "16",
    }
    config = Config.from_env(env)
    assert config.s3_bucket == "my-ml-bucket"
    assert config.default_location == "s3://my-ml-bucket"
    assert config.aws_region == "eu-west-1"
    assert config.aws_endpoint_url == "http://127.0.0.1:9000"
    assert config.storage_root == tmp_path / "root"
    assert config.secrets_prefix == "team-a/"
    assert config.kms_key_id == "arn:aws:kms:eu-west-1:111122223333:key/abc"
    assert config.log_level == "DEBUG"
    assert config.capabilities == ("data_preparation", "ml_training")  # canonical order
    assert config.read_only is True
    assert config.max_concurrent_jobs == 3
    assert config.default_max_wait_seconds == 20.0
    assert config.max_dataset_bytes == 16 * 1024**2


def test_readme_table_lists_exactly_the_parsed_variables() -> None:
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    source = (Path(__file__).resolve().parents[1] / "mcp_server" / "config.py").read_text()
    read = set(re.findall(r"\"((?:MLOPS|AWS|LOG|SLACK|SMTP|GITHUB|CLOUDWATCH|SAGEMAKER)_[A-Z_]+)\"", source)) - {
        "AWS_DEFAULT_REGION"
    }
    assert documented == read


def test_default_region_used_when_aws_region_unset() -> None:
    assert Config.from_env({"AWS_DEFAULT_REGION": "eu-north-1"}).aws_region == "eu-north-1"


def test_relative_storage_root_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Config.from_env({"MLOPS_STORAGE_ROOT": "rel/root"}).storage_root == tmp_path / "rel" / "root"


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "on", " True "])
def test_read_only_truthy_values(value: str) -> None:
    assert Config.from_env({"MLOPS_READ_ONLY": value}).read_only is True


@pytest.mark.parametrize("value", ["false", "0", "no", "off", ""])
def test_read_only_falsy_values(value: str) -> None:
    assert Config.from_env({"MLOPS_READ_ONLY": value}).read_only is False


def test_capabilities_all_means_every_capability() -> None:
    assert Config.from_env({"MLOPS_CAPABILITIES": "all"}).capabilities == CAPABILITY_NAMES


def test_overrides_replace_parsed_values() -> None:
    config = Config.from_env({"MLOPS_MAX_DATASET_MB": "5"}, max_dataset_bytes=100, read_only=True)
    assert config.max_dataset_bytes == 100 and config.read_only is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_READ_ONLY": "maybe"}, "MLOPS_READ_ONLY='maybe' is not a boolean; use true or false"),
        ({"MLOPS_S3_BUCKET": "Bad_Bucket"}, "MLOPS_S3_BUCKET='Bad_Bucket' is not a valid S3 bucket name"),
        ({"MLOPS_S3_BUCKET": "s3://my-bucket"}, "MLOPS_S3_BUCKET='s3://my-bucket' is not a valid S3 bucket name"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"MLOPS_CAPABILITIES": "data_preparation,teleport"}, "MLOPS_CAPABILITIES names unknown capabilities"),
        ({"MLOPS_MAX_CONCURRENT_JOBS": "many"}, "MLOPS_MAX_CONCURRENT_JOBS='many' is not an integer"),
        ({"MLOPS_MAX_CONCURRENT_JOBS": "0"}, "MLOPS_MAX_CONCURRENT_JOBS=0 is out of range; use 1..64"),
        ({"MLOPS_MAX_WAIT_SECONDS": "-5"}, "MLOPS_MAX_WAIT_SECONDS=-5 is out of range; use 0..3600"),
        ({"MLOPS_MAX_WAIT_SECONDS": "1.5"}, "MLOPS_MAX_WAIT_SECONDS='1.5' is not an integer"),
        ({"MLOPS_MAX_DATASET_MB": "0"}, "MLOPS_MAX_DATASET_MB=0 is out of range"),
        ({"AWS_REGION": "us east 1"}, "AWS_REGION='us east 1' is not a region name"),
        ({"AWS_ENDPOINT_URL": "localhost:9000"}, "AWS_ENDPOINT_URL='localhost:9000' is not an http(s) URL"),
    ],
)
def test_bad_value_gives_one_clear_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_env(env)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_storage_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        Config.from_env({"MLOPS_STORAGE_ROOT": str(file)})


def run_server(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AWS_ENDPOINT"))}
    return subprocess.run(
        [sys.executable, "-m", "mcp_server", *args],
        env={**base, **env},
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {"MLOPS_READ_ONLY": "maybe"}, "MLOPS_READ_ONLY='maybe' is not a boolean"),
        (("--capabilities", "nope"), {}, "MLOPS_CAPABILITIES names unknown capabilities ['nope']"),
    ],
)
def test_bad_config_exits_nonzero_with_one_stderr_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    proc = run_server(*args, MLOPS_STORAGE_ROOT=str(tmp_path), **env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mcp_server: configuration error: ")
    assert expected in lines[0]


def test_list_tools_flag_respects_read_only(tmp_path: Path) -> None:
    full = run_server("--list-tools", MLOPS_STORAGE_ROOT=str(tmp_path))
    read_only = run_server("--list-tools", "--read-only", MLOPS_STORAGE_ROOT=str(tmp_path))
    assert full.returncode == 0 and read_only.returncode == 0
    assert full.stdout == "" and read_only.stdout == ""
    all_tools = set(full.stderr.split())
    ro_tools = set(read_only.stderr.split())
    assert "load_dataset" in ro_tools
    assert ro_tools <= all_tools
    expected = {t.name for t in UnifiedMLOpsMCPServer(Config.from_env({}, read_only=True)).router.list_tools()}
    assert ro_tools == expected


def test_capabilities_subset_routes_only_those_tools(tmp_path: Path) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(tmp_path), "MLOPS_CAPABILITIES": "data_preparation"})
    router = UnifiedMLOpsMCPServer(config).router
    assert "load_dataset" in router.tool_names
    assert {router.capability_of(name) for name in router.tool_names} == {"data_preparation"}
    everything = UnifiedMLOpsMCPServer(Config.from_env({"MLOPS_STORAGE_ROOT": str(tmp_path)})).router
    own = {n for n in everything.tool_names if everything.capability_of(n) == "data_preparation"}
    assert set(router.tool_names) == own


def test_capabilities_subset_without_data_preparation_drops_load_dataset(tmp_path: Path) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(tmp_path), "MLOPS_CAPABILITIES": "notification"})
    router = UnifiedMLOpsMCPServer(config).router
    assert "load_dataset" not in router.tool_names
    assert all(router.capability_of(name) == "notification" for name in router.tool_names)


async def test_read_only_lists_no_writing_tool_and_refuses_them(tmp_path: Path) -> None:
    root = str(tmp_path)
    full = UnifiedMLOpsMCPServer(Config.from_env({"MLOPS_STORAGE_ROOT": root})).router
    ro = UnifiedMLOpsMCPServer(Config.from_env({"MLOPS_STORAGE_ROOT": root, "MLOPS_READ_ONLY": "true"})).router
    listed = ro.list_tools()
    assert listed, "read-only mode must still offer the reading tools"
    for tool in listed:
        assert tool.annotations is not None and tool.annotations.read_only_hint is True, tool.name
    writers = [t.name for t in full.list_tools() if t.annotations and t.annotations.read_only_hint is False]
    assert {t.name for t in listed} == set(full.tool_names) - set(writers)
    for name in writers:
        with pytest.raises(MCPError, match="read-only"):  # an unknown tool there: a JSON-RPC error
            await ro.call(name, {})
