"""S3Utils: URI confinement attacks, size limits, bad formats, atomic and conditional writes,
SSE-KMS, multipart uploads, lineage and the mapping of S3 errors -- on local storage and moto."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mcp_server.common import s3_utils
from mcp_server.common.exceptions import (
    AccessDeniedError,
    BadFormatError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnsafePathError,
)
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from tests.conftest import BUCKET


@pytest.fixture
def storage(local_config: Config) -> S3Utils:
    return S3Utils(local_config)


@pytest.fixture
def s3_storage(s3_config: Config) -> S3Utils:
    return S3Utils(s3_config)


@pytest.fixture
def any_storage(any_config: Config) -> S3Utils:
    return S3Utils(any_config)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to (not inside) the storage root, holding a file an attacker wants."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_text("password\nhunter2\n")
    return folder


def leftovers(folder: Path) -> list[str]:
    """Temp files an interrupted or finished write might have left behind."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp"))


# ----------------------------------------------------------------------------- URI attacks
@pytest.mark.parametrize("uri", ["../x.csv", "a/../../x.csv", "a/..\\..\\x.csv", "s3://bucket/../x.csv"])
def test_resolve_refuses_dot_dot_traversal(storage: S3Utils, uri: str) -> None:
    with pytest.raises(UnsafePathError) as err:
        storage.resolve(uri, "s3_uri")
    assert err.value.field == "s3_uri"
    assert "'..'" in str(err.value)


def test_resolve_refuses_file_uri_outside_root(storage: S3Utils) -> None:
    with pytest.raises(UnsafePathError, match="outside the storage root"):
        storage.resolve("file:///etc/passwd", "data_s3_uri")


def test_resolve_refuses_encoded_traversal_in_file_uri(storage: S3Utils) -> None:
    uri = (storage.root / "%2e%2e" / "%2e%2e" / "etc" / "passwd").as_uri().replace("%252e", "%2e")
    with pytest.raises(UnsafePathError):
        storage.resolve(uri)


def test_resolve_refuses_absolute_path_outside_root(storage: S3Utils, outside: Path) -> None:
    with pytest.raises(UnsafePathError, match="outside the storage root"):
        storage.resolve(str(outside / "secret.csv"))
    # an absolute path that only *starts* inside the root and climbs out
    with pytest.raises(UnsafePathError):
        storage.resolve(f"{storage.root}/../outside/secret.csv")


def test_resolve_accepts_absolute_and_file_uri_inside_root(storage: S3Utils) -> None:
    target = storage.root / "datasets" / "iris.csv"
    assert storage.resolve(str(target)).key == "datasets/iris.csv"
    assert storage.resolve(target.as_uri()).key == "datasets/iris.csv"
    assert storage.resolve("datasets/iris.csv").path == target


def test_resolve_accepts_root_reached_through_symlinked_parent(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    link = tmp_path / "link-root"
    link.symlink_to(real, target_is_directory=True)
    storage = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(link)}))
    assert storage.resolve(str(link / "a.csv")).key == "a.csv"


def test_symlink_escape_refused_for_read(storage: S3Utils, outside: Path) -> None:
    (storage.root / "innocent.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(UnsafePathError, match="symlink"):
        storage.resolve("innocent.csv")
    with pytest.raises(UnsafePathError):
        storage.resolve((storage.root / "innocent.csv").as_uri())


def test_symlink_escape_refused_for_write(storage: S3Utils, outside: Path) -> None:
    (storage.root / "exports").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symlink"):
        storage.resolve("exports/new.csv", "output_s3_uri")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]


def test_join_and_sibling_cannot_escape_through_symlink(storage: S3Utils, outside: Path) -> None:
    (storage.root / "out").symlink_to(outside, target_is_directory=True)
    base = storage.resolve("data/train.csv")
    with pytest.raises(UnsafePathError):
        storage.join(storage.resolve("data"), "..", "out", "x.csv")
    with pytest.raises(UnsafePathError):
        storage.sibling(base, "../out/x.csv")
    with pytest.raises(UnsafePathError):
        storage.join(storage.resolve("out/../data"), "x")


@pytest.mark.parametrize("uri", [".locks/abc.lock", "./.locks/x", "s3://bucket/.locks/x"])
def test_resolve_refuses_reserved_lock_dir(storage: S3Utils, uri: str) -> None:
    with pytest.raises(UnsafePathError, match="reserved"):
        storage.resolve(uri)


def test_resolve_refuses_lock_dir_by_absolute_path(storage: S3Utils) -> None:
    with pytest.raises(UnsafePathError, match="reserved"):
        storage.resolve(str(storage.root / ".locks" / "x.lock"))


def test_lock_dir_hidden_from_listings(storage: S3Utils) -> None:
    loc = storage.resolve("reg/model.json")
    tag = storage.create_only(loc, b"{}")
    storage.write_if_match(loc, b'{"v": 2}', tag)  # takes a lock under .locks
    assert (storage.root / ".locks").is_dir()
    root_listing = [loc.key for loc in storage.list_objects(storage.resolve("reg"))]
    assert root_listing == ["reg/model.json"]


@pytest.mark.parametrize("uri", ["-x", "--help", " -rf", "-"])
def test_resolve_refuses_flag_like_uri(storage: S3Utils, uri: str) -> None:
    with pytest.raises(InvalidInputError, match="may not start with '-'"):
        storage.resolve(uri, "s3_uri")


@pytest.mark.parametrize("uri", ["data\x00.csv", "a\nb.csv", "a\rb", "x\x1b[2J.csv", "s3://b\x00/k"])
def test_resolve_refuses_nul_and_control_characters(storage: S3Utils, uri: str) -> None:
    with pytest.raises(InvalidInputError, match="control characters"):
        storage.resolve(uri)


@pytest.mark.parametrize("uri", ["http://example.com/x.csv", "ftp://host/x.csv", "gs://bucket/x", "S3://b/k"])
def test_resolve_refuses_unsupported_scheme(storage: S3Utils, uri: str) -> None:
    with pytest.raises(InvalidInputError, match="unsupported URI scheme") as err:
        storage.resolve(uri, "data_s3_uri")
    assert err.value.field == "data_s3_uri"
    assert "s3://bucket/key" in str(err.value)


def test_resolve_refuses_remote_file_uri_host(storage: S3Utils) -> None:
    with pytest.raises(InvalidInputError, match="must be local"):
        storage.resolve("file://evil.example.com/etc/passwd")


@pytest.mark.parametrize("uri", ["", "   ", "s3://", "s3:///key", "s3://bucket/", "s3://bucket"])
def test_resolve_refuses_empty_or_incomplete_uri(storage: S3Utils, uri: str) -> None:
    with pytest.raises(InvalidInputError):
        storage.resolve(uri)


def test_plain_key_goes_to_bucket_when_configured(s3_storage: S3Utils) -> None:
    loc = s3_storage.resolve("datasets/./iris.csv")
    assert (loc.scheme, loc.bucket, loc.key) == ("s3", BUCKET, "datasets/iris.csv")
    assert loc.uri == f"s3://{BUCKET}/datasets/iris.csv"


# ----------------------------------------------------------------------------- size limits
def test_oversized_object_refused_with_clear_message(tmp_path: Path) -> None:
    root = tmp_path / "root"
    storage = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(root), "MLOPS_MAX_DATASET_MB": "1"}))
    loc = storage.resolve("big.csv")
    storage.write_bytes(loc, b"x\n" + b"1\n" * (600 * 1024))  # 1.2 MB
    for read in (storage.read_bytes, storage.read_dataframe):
        with pytest.raises(BadFormatError) as err:
            read(loc)
        text = str(err.value)
        assert "over the 1048576-byte limit" in text
        assert "MLOPS_MAX_DATASET_MB" in text


def test_oversized_s3_object_refused_before_download(aws: Any, storage_root: Path) -> None:
    config = Config.from_env({"MLOPS_S3_BUCKET": BUCKET, "MLOPS_STORAGE_ROOT": str(storage_root)})
    storage = S3Utils(config)
    aws.put_object(Bucket=BUCKET, Key="big.parquet", Body=b"0" * 5000)
    small = S3Utils(Config.from_env({"MLOPS_S3_BUCKET": BUCKET}, max_dataset_bytes=4096))
    with pytest.raises(BadFormatError, match="5000 bytes, over the 4096-byte limit"):
        small.read_dataframe(small.resolve("big.parquet"))
    assert len(storage.read_bytes(storage.resolve("big.parquet"))) == 5000


def test_explicit_max_bytes_overrides_config_limit(storage: S3Utils) -> None:
    loc = storage.resolve("meta.json")
    storage.write_bytes(loc, b"{}" + b" " * 100)
    with pytest.raises(BadFormatError, match="over the 10-byte limit"):
        storage.read_bytes(loc, max_bytes=10)


# ----------------------------------------------------------------------------- bad formats
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n"),
        ("empty.csv", b""),
        ("latin1.csv", b"name\n\xff\xfe\xfa caf\xe9\n"),
        ("garbage.parquet", b"PAR1 this is not parquet"),
        ("truncated.json", b'[{"a": 1}, {"a": '),
        ("not.json", b"hello world"),
    ],
)
def test_malformed_file_raises_bad_format(any_storage: S3Utils, name: str, content: bytes) -> None:
    loc = any_storage.resolve(f"bad/{name}")
    any_storage.write_bytes(loc, content)
    with pytest.raises(BadFormatError) as err:
        any_storage.read_dataframe(loc, field="data_s3_uri")
    assert err.value.field == "data_s3_uri"
    assert f"cannot read {loc.uri}" in str(err.value)


def test_truncated_real_parquet_raises_bad_format(storage: S3Utils) -> None:
    loc = storage.resolve("t.parquet")
    storage.write_dataframe(pd.DataFrame({"a": range(1000)}), loc)
    data = loc.path.read_bytes()  # type: ignore[union-attr]
    loc.path.write_bytes(data[: len(data) // 2])  # type: ignore[union-attr]
    with pytest.raises(BadFormatError, match="as parquet"):
        storage.read_dataframe(loc)


def test_unknown_extension_asks_for_file_format(storage: S3Utils) -> None:
    loc = storage.resolve("data.bin")
    storage.write_bytes(loc, b"a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match="pass file_format"):
        storage.read_dataframe(loc)
    assert storage.read_dataframe(loc, file_format="csv").to_dict("list") == {"a": [1], "b": [2]}


def test_missing_local_object_is_not_found(storage: S3Utils) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        storage.read_dataframe(storage.resolve("nope.csv"))


# ----------------------------------------------------------------------------- atomic local writes
def test_local_write_is_atomic_and_leaves_no_temp_files(storage: S3Utils) -> None:
    loc = storage.resolve("out/data.bin")
    digest = storage.write_bytes(loc, b"first")
    storage.write_bytes(loc, b"second")
    assert loc.path is not None and loc.path.read_bytes() == b"second"
    assert digest == hashlib.sha256(b"first").hexdigest()
    assert sorted(p.name for p in loc.path.parent.iterdir()) == ["data.bin"]


def test_failing_local_write_keeps_old_content(storage: S3Utils) -> None:
    loc = storage.resolve("out/data.bin")
    storage.write_bytes(loc, b"old")
    with pytest.raises(TypeError):
        storage.write_bytes(loc, "not bytes")  # type: ignore[arg-type]
    assert loc.path is not None and loc.path.read_bytes() == b"old"
    assert leftovers(storage.root) == []


def test_failing_dataframe_write_keeps_old_file(storage: S3Utils) -> None:
    loc = storage.resolve("out/frame.parquet")
    storage.write_dataframe(pd.DataFrame({"a": [1, 2]}), loc)
    mixed = pd.DataFrame({"a": [1, "two", 3.5, b"\x00"]}, dtype=object)
    with pytest.raises(BadFormatError, match="cannot write"):
        storage.write_dataframe(mixed, loc)
    assert storage.read_dataframe(loc)["a"].tolist() == [1, 2]
    assert leftovers(storage.root) == []


def test_staged_write_publishes_nothing_on_failure(any_storage: S3Utils) -> None:
    loc = any_storage.resolve("out/model.bin")
    with pytest.raises(RuntimeError), any_storage.staged_write(loc) as path:
        path.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert not any_storage.exists(loc)
    with any_storage.staged_write(loc) as path:
        path.write_bytes(b"whole")
    assert any_storage.read_bytes(loc) == b"whole"


# ----------------------------------------------------------------------------- conditional writes
def test_create_only_conflicts_on_second_write(any_storage: S3Utils) -> None:
    loc = any_storage.resolve("registry/model/v1.json")
    any_storage.create_only(loc, b"winner")
    with pytest.raises(ConflictError, match="already exists"):
        any_storage.create_only(loc, b"loser")
    assert any_storage.read_bytes(loc) == b"winner"


def test_write_if_match_accepts_current_tag_and_refuses_stale_one(any_storage: S3Utils) -> None:
    loc = any_storage.resolve("registry/index.json")
    any_storage.create_only(loc, b'{"v": 1}')
    data, tag = any_storage.read_versioned(loc)
    assert data == b'{"v": 1}'
    new_tag = any_storage.write_if_match(loc, b'{"v": 2}', tag)
    assert new_tag != tag
    with pytest.raises(ConflictError, match="changed by another writer"):
        any_storage.write_if_match(loc, b'{"v": 3}', tag)  # stale: someone wrote v2 since
    assert any_storage.read_bytes(loc) == b'{"v": 2}'
    assert any_storage.read_versioned(loc)[1] == new_tag
    any_storage.write_if_match(loc, b'{"v": 3}', new_tag)
    assert any_storage.read_bytes(loc) == b'{"v": 3}'


def test_write_if_match_on_deleted_object_conflicts(any_storage: S3Utils) -> None:
    loc = any_storage.resolve("registry/gone.json")
    tag = any_storage.create_only(loc, b"x")
    any_storage.delete(loc)
    with pytest.raises(ConflictError):
        any_storage.write_if_match(loc, b"y", tag)


def test_concurrent_create_only_has_exactly_one_winner(storage: S3Utils) -> None:
    loc = storage.resolve("registry/model/v7.json")
    n = 12
    barrier = threading.Barrier(n)
    outcomes: list[str] = [""] * n

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            storage.create_only(loc, f"writer-{i}".encode())
            outcomes[i] = "won"
        except ConflictError:
            outcomes[i] = "conflict"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1
    assert outcomes.count("conflict") == n - 1
    assert storage.read_bytes(loc) == f"writer-{outcomes.index('won')}".encode()
    assert leftovers(storage.root) == []


def test_concurrent_write_if_match_has_exactly_one_winner(storage: S3Utils) -> None:
    loc = storage.resolve("registry/counter.json")
    # Not b"0": the tag is the content's hash, so a winner writing the same bytes would leave the
    # tag unchanged and let a second writer match it too (S3's ETag behaves the same way).
    tag = storage.create_only(loc, b"initial")
    n = 8
    barrier = threading.Barrier(n)
    won: list[int] = []
    lost: list[int] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            storage.write_if_match(loc, str(i).encode(), tag)
            won.append(i)
        except ConflictError:
            lost.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == n - 1
    assert storage.read_bytes(loc) == str(won[0]).encode()


# ----------------------------------------------------------------------------- S3 specifics
def test_sse_kms_applied_to_every_s3_write(aws: Any, storage_root: Path) -> None:
    import boto3

    key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    storage = S3Utils(Config.from_env({"MLOPS_S3_BUCKET": BUCKET, "MLOPS_KMS_KEY_ID": key_id}))
    storage.write_bytes(storage.resolve("a.bin"), b"a")
    storage.create_only(storage.resolve("b.json"), b"{}")
    storage.write_dataframe(pd.DataFrame({"x": [1]}), storage.resolve("c.parquet"))
    src = storage_root / "d.bin"
    src.write_bytes(b"d")
    storage.upload_file(src, storage.resolve("d.bin"))
    for key in ("a.bin", "b.json", "c.parquet", "d.bin"):
        head = aws.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith(key_id), key


def test_s3_writes_unencrypted_by_kms_without_key(s3_storage: S3Utils, aws: Any) -> None:
    s3_storage.write_bytes(s3_storage.resolve("plain.bin"), b"x")
    assert aws.head_object(Bucket=BUCKET, Key="plain.bin").get("ServerSideEncryption") != "aws:kms"


def test_large_upload_uses_multipart(
    s3_storage: S3Utils, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_utils, "_MULTIPART_THRESHOLD", 5 * 1024**2)
    src = tmp_path / "big.bin"
    payload = os.urandom(9 * 1024**2)  # two parts at boto3's default 8 MiB chunk size
    src.write_bytes(payload)
    digest = s3_storage.upload_file(src, s3_storage.resolve("big/big.bin"))
    etag = aws.head_object(Bucket=BUCKET, Key="big/big.bin")["ETag"].strip('"')
    assert etag.endswith("-2"), etag  # a multipart ETag names its part count
    assert digest == hashlib.sha256(payload).hexdigest()
    with s3_storage.local_file(s3_storage.resolve("big/big.bin")) as path:
        assert path.read_bytes() == payload


def test_small_upload_is_single_part(s3_storage: S3Utils, aws: Any, tmp_path: Path) -> None:
    src = tmp_path / "small.bin"
    src.write_bytes(b"small")
    s3_storage.upload_file(src, s3_storage.resolve("small.bin"))
    assert "-" not in aws.head_object(Bucket=BUCKET, Key="small.bin")["ETag"]


def test_missing_bucket_maps_to_clear_not_found(aws: Any) -> None:
    storage = S3Utils(Config.from_env({"MLOPS_S3_BUCKET": "no-such-bucket-here"}))
    loc = storage.resolve("data.csv")
    for action in (storage.read_bytes, storage.read_dataframe, storage.list_objects):
        with pytest.raises(NotFoundError, match="bucket 'no-such-bucket-here' does not exist") as err:
            action(loc)
        assert "MLOPS_S3_BUCKET" in str(err.value)
    with pytest.raises(NotFoundError, match="bucket 'no-such-bucket-here' does not exist"):
        storage.write_bytes(loc, b"x")


def test_missing_s3_key_maps_to_not_found(s3_storage: S3Utils) -> None:
    loc = s3_storage.resolve("nothing/here.csv")
    with pytest.raises(NotFoundError, match=f"s3://{BUCKET}/nothing/here.csv does not exist"):
        s3_storage.read_dataframe(loc)
    assert s3_storage.exists(loc) is False


def _deny(client: Any, actions: list[str]) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": actions, "Resource": f"arn:aws:s3:::{BUCKET}/*"}],
    }
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))


def test_access_denied_maps_to_clear_error(s3_storage: S3Utils, aws: Any) -> None:
    loc = s3_storage.resolve("secret/data.csv")
    s3_storage.write_bytes(loc, b"a\n1\n")
    _deny(aws, ["s3:GetObject", "s3:PutObject"])
    with pytest.raises(AccessDeniedError) as err:
        s3_storage.read_dataframe(loc)
    assert f"access denied to {loc.uri}" in str(err.value)
    assert "bucket policy" in str(err.value)
    with pytest.raises(AccessDeniedError):
        s3_storage.write_bytes(s3_storage.resolve("secret/new.csv"), b"x")


# ----------------------------------------------------------------------------- DataFrames and lineage
def test_lineage_round_trip_in_parquet(any_storage: S3Utils) -> None:
    frame = pd.DataFrame({"f0": [0.1, 0.2, 0.3], "f1": [1.0, -1.0, 0.0], "target": ["a", "b", "a"]})
    lineage = {
        "pipeline_s3_uri": "s3://b/pipelines/p.skops",
        "target_column": "target",
        "task_type": "classification",
        "raw_feature_columns": ["x", "colour"],
        "feature_names": ["f0", "f1"],
        "source_s3_uri": "s3://b/raw.csv",
    }
    loc = any_storage.resolve("processed/train.parquet")
    digest = any_storage.write_dataframe(frame, loc, lineage=lineage)
    assert any_storage.read_lineage(loc) == lineage
    pd.testing.assert_frame_equal(any_storage.read_dataframe(loc), frame)
    assert digest == hashlib.sha256(any_storage.read_bytes(loc)).hexdigest()


def test_lineage_is_empty_for_csv_and_plain_parquet(any_storage: S3Utils) -> None:
    frame = pd.DataFrame({"a": [1]})
    csv, parquet = any_storage.resolve("x.csv"), any_storage.resolve("x.parquet")
    any_storage.write_dataframe(frame, csv, lineage={"ignored": True})
    any_storage.write_dataframe(frame, parquet)
    assert any_storage.read_lineage(csv) == {}
    assert any_storage.read_lineage(parquet) == {}


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.parquet", "d.json", "d.jsonl", "d.csv.gz"])
def test_dataframe_round_trip_per_format(storage: S3Utils, name: str) -> None:
    frame = pd.DataFrame({"num": [1.5, 2.5, None], "cat": ["x", "y", "z"]})
    loc = storage.resolve(f"fmt/{name}")
    if name.endswith(".tsv"):
        storage.write_bytes(loc, frame.to_csv(sep="\t", index=False).encode())
    else:
        storage.write_dataframe(frame, loc)
    got = storage.read_dataframe(loc)
    assert got["cat"].tolist() == ["x", "y", "z"]
    assert got["num"].iloc[:2].tolist() == [1.5, 2.5] and pd.isna(got["num"].iloc[2])


def test_read_dataframe_selects_columns(any_storage: S3Utils) -> None:
    loc = any_storage.resolve("cols.parquet")
    any_storage.write_dataframe(pd.DataFrame({"a": [1], "b": [2], "c": [3]}), loc)
    assert list(any_storage.read_dataframe(loc, columns=["c", "a"]).columns) == ["c", "a"]


def test_list_objects_is_sorted_and_skips_hidden_files(any_storage: S3Utils) -> None:
    for key in ("p/b.csv", "p/a.csv", "p/sub/c.csv", "q/other.csv"):
        any_storage.write_bytes(any_storage.resolve(key), b"x")
    keys = [loc.key for loc in any_storage.list_objects(any_storage.resolve("p"))]
    assert keys == ["p/a.csv", "p/b.csv", "p/sub/c.csv"]


# ----------------------------------------------------------------------------- hardening: buckets, credentials, scratch
def test_attack_s3_uri_naming_another_bucket_is_refused_before_any_request(s3_config: Config) -> None:
    storage = S3Utils(s3_config)
    with pytest.raises(AccessDeniedError, match=r"bucket 'hr-payroll' is not one this server may use") as err:
        storage.resolve("s3://hr-payroll/salaries.csv", "s3_uri")
    assert err.value.field == "s3_uri"
    assert storage._client is None  # refused from the name alone: no client was even made
    assert storage.resolve(f"s3://{BUCKET}/data/x.csv").bucket == BUCKET


def test_allowed_buckets_setting_adds_buckets_and_star_allows_any(storage_root: Path) -> None:
    extra = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_ALLOWED_BUCKETS": "a-b,c-d"}))
    assert extra.resolve("s3://c-d/k").bucket == "c-d"
    with pytest.raises(AccessDeniedError):
        extra.resolve("s3://e-f/k")
    anything = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_ALLOWED_BUCKETS": "*"}))
    assert anything.resolve("s3://whatever/k").bucket == "whatever"


def test_attack_credentials_in_an_s3_uri_are_refused_and_never_echoed(s3_config: Config) -> None:
    storage = S3Utils(s3_config)
    with pytest.raises(InvalidInputError) as err:
        storage.resolve(f"s3://AKIAEXAMPLE:hunter2-secret@{BUCKET}/k.csv", "s3_uri")
    assert "credentials" in str(err.value)
    assert "hunter2" not in str(err.value) and "AKIAEXAMPLE" not in str(err.value)


def test_attack_a_5000_character_key_is_a_clear_error(storage: S3Utils) -> None:
    with pytest.raises(InvalidInputError, match="the key is too long") as err:
        storage.resolve("data/" + "x" * 5000 + ".csv", "s3_uri")
    assert len(str(err.value)) < 600


def test_temporary_files_live_in_the_scratch_area_and_are_hidden(storage: S3Utils, tmp_path: Path) -> None:
    seen: list[Path] = []
    with storage.staged_write(storage.resolve("out/a.bin")) as path:
        seen.append(path)
        path.write_bytes(b"x")
    storage.write_bytes(storage.resolve("out/b.bin"), b"y")
    assert seen[0].is_relative_to(storage.root / ".mlops-tmp")
    assert sorted(p.name for p in (storage.root / "out").iterdir()) == ["a.bin", "b.bin"]  # no .tmp left beside
    assert [loc.key for loc in storage.list_objects(storage.resolve("out"))] == ["out/a.bin", "out/b.bin"]
    with pytest.raises(UnsafePathError, match="reserved"):
        storage.resolve(".mlops-tmp/anything")


def test_sweep_removes_what_a_killed_server_left_and_keeps_live_ones(storage: S3Utils) -> None:
    import socket
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    area = storage.root / ".mlops-tmp"
    leftover = area / f"{socket.gethostname()}-{dead.pid}" / "mlops-bundle-x"
    leftover.mkdir(parents=True)
    (leftover / "model.skops").write_bytes(b"\0" * 1024)
    live = area / f"{socket.gethostname()}-{os.getpid()}"
    live.mkdir(parents=True, exist_ok=True)
    assert storage.sweep_scratch() == 1
    assert not leftover.parent.exists() and live.exists()


# ----------------------------------------------------------------------------- arrow_path
def test_arrow_path_reads_local_parquet_in_place(storage: S3Utils) -> None:
    import pyarrow.parquet as pq

    loc = storage.resolve("data/t.parquet")
    storage.write_dataframe(pd.DataFrame({"a": [1, 2, 3]}), loc)
    path, filesystem = storage.arrow_path(loc)
    assert path == str(storage.root / "data/t.parquet")
    assert pq.read_table(path, filesystem=filesystem).column("a").to_pylist() == [1, 2, 3]


def test_arrow_path_refuses_a_symlink_swapped_in_after_resolve(storage: S3Utils, outside: Path) -> None:
    loc = storage.resolve("data/swapped.csv")
    loc.path.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    loc.path.symlink_to(outside / "secret.csv")  # type: ignore[union-attr]
    with pytest.raises(UnsafePathError):
        storage.arrow_path(loc)


def test_arrow_path_scratch_is_a_server_folder_callers_cannot_name(storage: S3Utils) -> None:
    loc = storage.resolve("data/t.parquet")
    path, _ = storage.arrow_path(loc, scratch="ray-train")
    assert path == str(storage.root / s3_utils.SCRATCH_DIR / "ray-train")
    with pytest.raises(UnsafePathError):
        storage.resolve(f"{s3_utils.SCRATCH_DIR}/ray-train/x")
    with pytest.raises(InvalidInputError):
        storage.arrow_path(loc, scratch="a/b")


def test_arrow_path_reads_s3_through_the_configured_endpoint_without_credentials_in_it(storage_root: Path) -> None:
    import pyarrow.parquet as pq

    from tests.conftest import http_s3_client, threaded_moto_server

    with threaded_moto_server() as endpoint:
        http_s3_client(endpoint).create_bucket(Bucket=BUCKET)
        config = Config.from_env(
            {"MLOPS_S3_BUCKET": BUCKET, "MLOPS_STORAGE_ROOT": str(storage_root), "AWS_ENDPOINT_URL": endpoint}
        )
        s3 = S3Utils(config)
        loc = s3.resolve("data/t.parquet")
        s3.write_dataframe(pd.DataFrame({"a": [4, 5]}), loc)
        path, filesystem = s3.arrow_path(loc)
        assert path == f"{BUCKET}/data/t.parquet"
        assert "testing" not in repr(filesystem.__reduce__())  # no key travels with it to a cluster
        assert pq.read_table(path, filesystem=filesystem).column("a").to_pylist() == [4, 5]
        with pytest.raises(AccessDeniedError):
            s3.resolve("s3://another-bucket/t.parquet")  # the allow-list applies before any path exists
