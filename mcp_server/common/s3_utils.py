"""All storage access: `s3://bucket/key` through boto3, everything else inside a confined local root.

URIs accepted everywhere a tool takes `*_uri`:
- `s3://bucket/key`
- `file:///abs/path` (must lie inside the local storage root)
- a plain key such as `datasets/iris.csv`: inside the bucket when `MLOPS_S3_BUCKET` is set,
  else inside the local storage root.

Local paths are resolved to real paths and refused when they leave the root (`..`, absolute
paths elsewhere, symlinks pointing out). Local writes are atomic (temp file + rename), and the
create-only / compare-and-swap helpers give the registry the same guarantees S3's
`IfNoneMatch` / `IfMatch` give on AWS.

Guards, all here so every tool gets them: `s3://` URIs may name only the allowed buckets
(`MLOPS_ALLOWED_BUCKETS`) and carry no credentials; every temporary file lives in one scratch
area (`<root>/.mlops-tmp/`, swept at start-up); and a write a tool makes on a caller's behalf goes
through `check_output`, which keeps it out of the server-owned prefixes and out of model bundles.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

from mcp_server.common.exceptions import (
    AccessDeniedError,
    BadFormatError,
    ConflictError,
    DatasetTooLargeError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    UnsafePathError,
)

if TYPE_CHECKING:
    import pandas as pd

    from mcp_server.config import Config

DataFormat = Literal["csv", "parquet", "json"]
_EXTENSIONS: dict[str, DataFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_LOCK_DIR = ".locks"  # inside the root, hidden from listings
SCRATCH_DIR = ".mlops-tmp"  # every temporary file, under the local root (same filesystem: atomic renames)
# Prefixes the server owns: only their own code (registry store, job runner, pipelines, webhook
# delivery records, the scratch area) writes there; a tool writing for a caller is refused.
RESERVED_PREFIXES = ("registry", "jobs", "pipelines", "results", "github/deliveries", SCRATCH_DIR, _LOCK_DIR)
BUNDLE_MARKER = "metadata.json"  # a folder holding this is a model bundle
# Inside a bundle, where evaluation tools may write; nothing else writes into a bundle but its trainer.
_BUNDLE_RESULT_FOLDERS = ("evaluations", "plots")
_MAX_KEY_BYTES = 1024  # S3's key limit; local names are also held to the filesystem's 255 per segment
_MAX_NAME_BYTES = 255
_SCRATCH_STALE_SECONDS = 24 * 3600
OutputPurpose = Literal["data", "model", "evaluation"]
_MULTIPART_THRESHOLD = 64 * 1024**2
LINEAGE_KEY = b"mlops"


@dataclass(frozen=True)
class Location:
    """A resolved storage location. `key` is a POSIX path relative to the bucket or local root."""

    scheme: Literal["s3", "local"]
    key: str
    bucket: str | None = None
    path: Path | None = None  # the real local path, for scheme == "local"

    @property
    def uri(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.key}"
        assert self.path is not None
        return self.path.as_uri()

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()


def data_format_of(loc: Location, explicit: str | None = None, field: str = "s3_uri") -> DataFormat:
    """The tabular format: explicit if given, else from the extension (`.csv.gz` counts as csv)."""
    if explicit:
        fmt = explicit.lower()
        if fmt not in ("csv", "parquet", "json"):
            raise InvalidInputError(
                f"unknown file_format {explicit!r}", field="file_format", hint="Use csv, parquet or json."
            )
        return fmt  # type: ignore[return-value]
    name = loc.name.lower()
    for compressed in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        if name.endswith(compressed):
            name = name[: -len(compressed)]
    found = _EXTENSIONS.get(Path(name).suffix)
    if found is None:
        raise InvalidInputError(
            f"cannot tell the format of {loc.uri!r} from its extension",
            field=field,
            hint="Use a .csv, .parquet or .json name, or pass file_format.",
        )
    return found


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class S3Utils:
    """Storage for every tool. Create one per `Config`; boto3 clients are made on first use."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._root_real: Path | None = None

    # ----------------------------------------------------------------- resolution
    @property
    def root(self) -> Path:
        """The local storage root (created on first use), as a real path."""
        if self._root_real is None:
            root = Path(self.config.storage_root)
            root.mkdir(parents=True, exist_ok=True)
            self._root_real = Path(os.path.realpath(root))
        return self._root_real

    def resolve(self, uri: str, field: str = "s3_uri") -> Location:
        """Parse and confine a URI. Raises `InvalidInputError` / `UnsafePathError` naming `field`."""
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidInputError("a storage URI is required", field=field, hint="Pass s3://bucket/key or a path.")
        uri = uri.strip()
        if "\x00" in uri or any(ord(c) < 32 for c in uri):
            raise InvalidInputError("the URI contains control characters", field=field)
        if uri.startswith("-"):
            raise InvalidInputError("a URI may not start with '-'", field=field)
        if uri.startswith("s3://"):
            parsed = urlparse(uri)
            bucket, key = parsed.netloc, parsed.path.lstrip("/")
            if "@" in bucket:  # never echo the URI: its userinfo is a credential
                raise InvalidInputError(
                    "the s3:// URI carries credentials (user:password@); they are refused and not used",
                    field=field,
                    hint="Write s3://bucket/key; AWS credentials come from the environment or an IAM role.",
                )
            if not bucket:
                raise InvalidInputError(f"{uri!r} has no bucket", field=field, hint="Use s3://bucket/key.")
            clean = self._clean_key(key, field, uri)
            self._check_bucket(bucket, field)
            return Location("s3", clean, bucket=bucket)
        if "://" in uri and not uri.startswith("file://"):
            scheme = uri.split("://", 1)[0]
            raise InvalidInputError(
                f"unsupported URI scheme {scheme!r}",
                field=field,
                hint="Use s3://bucket/key, file:///path or a plain key.",
            )
        if uri.startswith("file://"):
            parsed = urlparse(uri)
            if parsed.netloc not in ("", "localhost"):
                raise InvalidInputError("file:// URIs must be local (file:///abs/path)", field=field)
            return self._local_from_absolute(Path(unquote(parsed.path)), field, uri)
        if os.path.isabs(uri):
            return self._local_from_absolute(Path(uri), field, uri)
        key = self._clean_key(uri, field, uri)
        if self.config.s3_bucket:
            return Location("s3", key, bucket=self.config.s3_bucket)
        return self._local(key, field, uri)

    def resolve_existing(self, uri: str, field: str) -> Location:
        """`resolve`, and refuse an object that is not there (an input file a tool is about to read)."""
        loc = self.resolve(uri, field)
        if not self.exists(loc):
            raise NotFoundError(f"{loc.uri} does not exist", field=field, hint="Check the URI or list the prefix.")
        return loc

    def _check_bucket(self, bucket: str, field: str) -> None:
        allowed = self.config.allowed_buckets
        if allowed is None or bucket in allowed:  # None: `MLOPS_ALLOWED_BUCKETS=*`
            return
        shown = ", ".join(allowed) or "none (no MLOPS_S3_BUCKET is set)"
        raise AccessDeniedError(
            f"bucket {bucket!r} is not one this server may use (allowed: {shown})",
            field=field,
            hint="Use a key in an allowed bucket, or add the bucket to MLOPS_ALLOWED_BUCKETS.",
        )

    @staticmethod
    def _clean_key(key: str, field: str, uri: str) -> str:
        parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
        shown = uri if len(uri) <= 200 else uri[:200] + "..."
        if any(p == ".." for p in parts):
            raise UnsafePathError(f"{shown!r} contains '..'", field=field, hint="Use a path inside the storage root.")
        if not parts:
            raise InvalidInputError(
                f"{shown!r} names no object", field=field, hint="Add a key after the bucket or root."
            )
        if parts[0] in (_LOCK_DIR, SCRATCH_DIR):
            raise UnsafePathError(f"{shown!r} is reserved", field=field)
        joined = "/".join(parts)
        if len(joined.encode()) > _MAX_KEY_BYTES or any(len(p.encode()) > _MAX_NAME_BYTES for p in parts):
            raise InvalidInputError(
                f"the key is too long ({len(joined.encode())} bytes)",
                field=field,
                hint=f"Keep keys within {_MAX_KEY_BYTES} bytes and each path segment within {_MAX_NAME_BYTES}.",
            )
        return joined

    # ----------------------------------------------------------------- outputs
    def resolve_output(self, uri: str, field: str, purpose: OutputPurpose = "data") -> Location:
        """`resolve` for a location a tool will write on the caller's behalf (see `check_output`)."""
        loc = self.resolve(uri, field)
        self.check_output(loc, field, purpose)
        return loc

    def check_output(self, loc: Location, field: str, purpose: OutputPurpose = "data") -> None:
        """Refuse a caller-directed write into a server-owned prefix or into a model bundle.

        `data`: datasets, reports, plots, exports: never inside a bundle, never `metadata.json`.
        `model`: a bundle folder written by a trainer or save_model: not inside another bundle.
        `evaluation`: a result or plot, inside a bundle only under `evaluations/` or `plots/`.
        The owning code (registry store, job runner, webhook records) writes without this check.
        """
        key = loc.key
        for prefix in RESERVED_PREFIXES:
            if key == prefix or key.startswith(prefix + "/"):
                raise AccessDeniedError(
                    f"{loc.uri} is under {prefix}/, which only the server itself writes",
                    field=field,
                    hint="Choose an output outside " + ", ".join(p + "/" for p in RESERVED_PREFIXES) + ".",
                )
        if purpose != "model" and loc.name == BUNDLE_MARKER:
            raise AccessDeniedError(
                f"{loc.uri} would be a model bundle's {BUNDLE_MARKER}, which only a trainer writes",
                field=field,
                hint="Choose another file name.",
            )
        parts = key.split("/")
        folders = parts[:-1]  # a model target is itself a folder: rewriting one's own bundle is allowed
        for depth in range(len(folders), 0, -1):
            folder = "/".join(folders[:depth])
            if not self.exists(self._at(loc, f"{folder}/{BUNDLE_MARKER}")):
                continue
            inside = parts[depth:]
            if purpose == "evaluation" and len(inside) > 1 and inside[0] in _BUNDLE_RESULT_FOLDERS:
                return
            raise AccessDeniedError(
                f"{loc.uri} is inside the model bundle {self._at(loc, folder).uri}, which only its trainer writes",
                field=field,
                hint="Write outside the bundle (evaluation results and plots go under its evaluations/ and plots/).",
            )

    def _at(self, like: Location, key: str) -> Location:
        """`key` in the same bucket or root as `like` (key already clean)."""
        if like.scheme == "s3":
            return Location("s3", key, bucket=like.bucket)
        return Location("local", key, path=self.root / key)

    # ----------------------------------------------------------------- scratch area
    @contextlib.contextmanager
    def scratch(self, prefix: str = "mlops-") -> Iterator[Path]:
        """A temporary folder in the scratch area, removed afterwards (also in S3 mode: it is local)."""
        base = self._scratch_base()
        with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as tmp:
            yield Path(tmp)

    def _scratch_base(self) -> Path:
        # One folder per process, named so a later start-up can tell a dead process's leftovers.
        base = self.root / SCRATCH_DIR / f"{socket.gethostname()}-{os.getpid()}"
        base.mkdir(parents=True, exist_ok=True)
        return base

    def sweep_scratch(self) -> int:
        """Remove what dead processes (kill -9 mid-publish) left in the scratch area; returns the count."""
        import shutil

        area = self.root / SCRATCH_DIR
        if not area.is_dir():
            return 0
        host = socket.gethostname()
        removed = 0
        for entry in area.iterdir():
            owner_host, _, pid = entry.name.rpartition("-")
            try:
                age = time.time() - entry.stat().st_mtime
            except FileNotFoundError:
                continue
            # Ours (this host): stale once its process is gone; another machine's only when abandoned.
            ours = owner_host == host and pid.isdigit()
            stale = not pid_alive(int(pid)) if ours else age > _SCRATCH_STALE_SECONDS
            if stale:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed

    def _local_from_absolute(self, path: Path, field: str, uri: str) -> Location:
        root = self.root
        absolute = Path(os.path.abspath(path))
        try:
            rel = absolute.relative_to(root)
        except ValueError:
            try:  # the root itself may be reached through a symlinked parent
                rel = absolute.relative_to(Path(self.config.storage_root).absolute())
            except ValueError:
                raise UnsafePathError(
                    f"{uri!r} is outside the storage root {root}",
                    field=field,
                    hint="Use a path inside MLOPS_STORAGE_ROOT or an s3:// URI.",
                ) from None
        return self._local(self._clean_key(rel.as_posix(), field, uri), field, uri)

    def _local(self, key: str, field: str, uri: str) -> Location:
        root = self.root
        real = Path(os.path.realpath(root / key))
        if real != root and root not in real.parents:
            raise UnsafePathError(
                f"{uri!r} resolves outside the storage root (symlink escape)",
                field=field,
                hint="Use a path inside MLOPS_STORAGE_ROOT.",
            )
        return Location("local", key, path=root / key)

    def join(self, base: Location, *parts: str) -> Location:
        """A location under `base` (same bucket or root)."""
        key = "/".join([base.key.rstrip("/"), *(p.strip("/") for p in parts)])
        key = self._clean_key(key, "uri", key)
        if base.scheme == "s3":
            return Location("s3", key, bucket=base.bucket)
        return self._local(key, "uri", key)

    def parent(self, loc: Location) -> Location:
        """The folder holding `loc`."""
        if "/" not in loc.key:
            raise InvalidInputError(f"{loc.uri} has no parent folder inside its bucket or root")
        key = loc.key.rsplit("/", 1)[0]
        return Location("s3", key, bucket=loc.bucket) if loc.scheme == "s3" else self._local(key, "uri", key)

    def sibling(self, loc: Location, name: str) -> Location:
        """A location next to `loc` (same folder), e.g. the default output of a tool."""
        parent = loc.key.rsplit("/", 1)[0] if "/" in loc.key else ""
        key = f"{parent}/{name}" if parent else name
        if loc.scheme == "s3":
            return Location("s3", self._clean_key(key, "uri", key), bucket=loc.bucket)
        return self._local(self._clean_key(key, "uri", key), "uri", key)

    # ----------------------------------------------------------------- S3 client
    @property
    def s3(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config as BotoConfig

                    self._client = boto3.client(
                        "s3",
                        region_name=self.config.aws_region,
                        endpoint_url=self.config.aws_endpoint_url,
                        config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}),
                    )
        return self._client

    def _write_extra(self, content_type: str | None = None) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self.config.kms_key_id:
            extra["ServerSideEncryption"] = "aws:kms"
            extra["SSEKMSKeyId"] = self.config.kms_key_id
        if content_type:
            extra["ContentType"] = content_type
        return extra

    @contextlib.contextmanager
    def _s3_errors(self, loc: Location) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket"):
                raise NotFoundError(f"{loc.uri} does not exist", hint="Check the URI or list the prefix.") from None
            if code == "NoSuchBucket":
                raise NotFoundError(
                    f"bucket {loc.bucket!r} does not exist", hint="Create it or fix MLOPS_S3_BUCKET."
                ) from None
            if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled") or status == 403:
                raise AccessDeniedError(
                    f"access denied to {loc.uri}", hint="Check the IAM policy or bucket policy for this key."
                ) from None
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                raise ConflictError(f"{loc.uri} was changed by another writer") from None
            raise StorageError(f"S3 error on {loc.uri}: {code or status}", hint="Retry, or check the bucket.") from None
        except BotoCoreError as exc:
            raise StorageError(
                f"cannot reach S3 for {loc.uri}: {exc}", hint="Check AWS_REGION / AWS_ENDPOINT_URL."
            ) from None

    # ----------------------------------------------------------------- bytes
    def exists(self, loc: Location) -> bool:
        if loc.scheme == "local":
            assert loc.path is not None
            return loc.path.is_file()
        try:
            with self._s3_errors(loc):
                self.s3.head_object(Bucket=loc.bucket, Key=loc.key)
        except NotFoundError:
            return False
        return True

    def size(self, loc: Location) -> int:
        if loc.scheme == "local":
            assert loc.path is not None
            if not loc.path.is_file():
                raise NotFoundError(f"{loc.uri} does not exist", hint="Check the URI or list the prefix.")
            return loc.path.stat().st_size
        try:
            with self._s3_errors(loc):
                return int(self.s3.head_object(Bucket=loc.bucket, Key=loc.key)["ContentLength"])
        except NotFoundError:
            # HEAD responses carry no error code, so a missing bucket looks like a missing key;
            # tell the two apart (only on this error path) so the message points at the real fix.
            if loc.bucket and not self._bucket_exists(loc):
                raise NotFoundError(
                    f"bucket {loc.bucket!r} does not exist", hint="Create it or fix MLOPS_S3_BUCKET."
                ) from None
            raise

    def _bucket_exists(self, loc: Location) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.head_bucket(Bucket=loc.bucket)
        except ClientError as exc:
            return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404
        except BotoCoreError:
            return True
        return True

    def read_bytes(self, loc: Location, max_bytes: int | None = None) -> bytes:
        limit = max_bytes or self.config.max_dataset_bytes
        size = self.size(loc)
        if size > limit:
            raise DatasetTooLargeError(
                f"{loc.uri} is {size} bytes, over the {limit}-byte limit",
                hint="Use a smaller file or raise MLOPS_MAX_DATASET_MB.",
            )
        if loc.scheme == "local":
            assert loc.path is not None
            return loc.path.read_bytes()
        with self._s3_errors(loc):
            return bytes(self.s3.get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read())

    def read_text(self, loc: Location) -> str:
        try:
            return self.read_bytes(loc).decode("utf-8")
        except UnicodeDecodeError:
            raise BadFormatError(f"{loc.uri} is not UTF-8 text") from None

    def write_bytes(self, loc: Location, data: bytes, content_type: str | None = None) -> str:
        """Write atomically; returns the sha256 of `data`."""
        if loc.scheme == "local":
            assert loc.path is not None
            self._atomic_local_write(loc.path, data)
        else:
            with self._s3_errors(loc):
                self.s3.put_object(Bucket=loc.bucket, Key=loc.key, Body=data, **self._write_extra(content_type))
        return sha256_bytes(data)

    def _atomic_local_write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._scratch_base(), prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def upload_file(self, src: Path, loc: Location, content_type: str | None = None) -> str:
        """Copy a local file into storage (multipart for large S3 objects); returns its sha256."""
        digest = sha256_file(src)
        if loc.scheme == "local":
            assert loc.path is not None
            loc.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._scratch_base(), prefix=f".{loc.path.name}.", suffix=".tmp")
            os.close(fd)
            try:
                import shutil

                shutil.copyfile(src, tmp)
                os.replace(tmp, loc.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            return digest
        from boto3.s3.transfer import TransferConfig

        with self._s3_errors(loc):
            self.s3.upload_file(
                str(src),
                loc.bucket,
                loc.key,
                ExtraArgs=self._write_extra(content_type) or None,
                Config=TransferConfig(multipart_threshold=_MULTIPART_THRESHOLD),
            )
        return digest

    @contextlib.contextmanager
    def local_file(self, loc: Location, max_bytes: int | None = None) -> Iterator[Path]:
        """A local path with the object's content: the file itself locally, a temp download for S3."""
        limit = max_bytes or self.config.max_dataset_bytes
        size = self.size(loc)
        if size > limit:
            raise DatasetTooLargeError(
                f"{loc.uri} is {size} bytes, over the {limit}-byte limit",
                hint="Use a smaller file or raise MLOPS_MAX_DATASET_MB.",
            )
        if loc.scheme == "local":
            assert loc.path is not None
            yield loc.path
            return
        from boto3.s3.transfer import TransferConfig

        with self.scratch() as tmp:
            path = tmp / (loc.name or "object")
            with self._s3_errors(loc):
                self.s3.download_file(
                    loc.bucket, loc.key, str(path), Config=TransferConfig(multipart_threshold=_MULTIPART_THRESHOLD)
                )
            yield path

    @contextlib.contextmanager
    def staged_write(self, loc: Location) -> Iterator[Path]:
        """Yield a temp path to write; on success it is published to `loc`, on failure nothing is."""
        with self.scratch() as tmp:
            path = tmp / (loc.name or "object")
            yield path
            self.upload_file(path, loc)

    def delete(self, loc: Location) -> None:
        if loc.scheme == "local":
            assert loc.path is not None
            with contextlib.suppress(FileNotFoundError):
                loc.path.unlink()
            return
        with self._s3_errors(loc):
            self.s3.delete_object(Bucket=loc.bucket, Key=loc.key)

    def copy(self, src: Location, dst: Location) -> str:
        """Copy one object; returns the sha256 of its content."""
        if src.scheme == "s3" and dst.scheme == "s3":
            data = self.read_bytes(src)
            return self.write_bytes(dst, data)
        with self.local_file(src) as path:
            return self.upload_file(path, dst)

    def list_objects(self, prefix: Location) -> list[Location]:
        """Every object under `prefix` (a folder-like key), sorted by key."""
        if prefix.scheme == "local":
            assert prefix.path is not None
            base = prefix.path
            if not base.is_dir():
                return []
            found = []
            for path in sorted(base.rglob("*")):
                rel = path.relative_to(self.root).as_posix()
                if path.is_file() and not path.name.startswith(".") and not rel.startswith((_LOCK_DIR, SCRATCH_DIR)):
                    found.append(Location("local", rel, path=path))
            return found
        out: list[Location] = []
        with self._s3_errors(prefix):
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key.rstrip("/") + "/"):
                for item in page.get("Contents", []):
                    out.append(Location("s3", item["Key"], bucket=prefix.bucket))
        return out

    # ----------------------------------------------------------------- conditional writes
    def read_versioned(self, loc: Location) -> tuple[bytes, str]:
        """Content and a version tag (S3 ETag, or the local content hash) for `write_if_match`."""
        if loc.scheme == "local":
            data = self.read_bytes(loc)
            return data, sha256_bytes(data)
        with self._s3_errors(loc):
            response = self.s3.get_object(Bucket=loc.bucket, Key=loc.key)
            return bytes(response["Body"].read()), str(response["ETag"])

    def create_only(self, loc: Location, data: bytes, content_type: str | None = None) -> str:
        """Write `data` only if nothing is at `loc`; raises `ConflictError` otherwise. Returns the tag."""
        if loc.scheme == "local":
            assert loc.path is not None
            loc.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._scratch_base(), prefix=f".{loc.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                # link() fails when the name exists: an atomic create-only publish of a complete file.
                os.link(tmp, loc.path)
            except FileExistsError:
                raise ConflictError(f"{loc.uri} already exists") from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            return sha256_bytes(data)
        from botocore.exceptions import ClientError

        with self._s3_errors(loc):
            try:
                response = self.s3.put_object(
                    Bucket=loc.bucket, Key=loc.key, Body=data, IfNoneMatch="*", **self._write_extra(content_type)
                )
            except ClientError as exc:
                # 412: the key exists; 409: a concurrent conditional write won. Same words as locally.
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
                    raise ConflictError(f"{loc.uri} already exists") from None
                raise
        return str(response["ETag"])

    def write_if_match(self, loc: Location, data: bytes, tag: str, content_type: str | None = None) -> str:
        """Replace `loc` only if it still has version `tag`; raises `ConflictError` otherwise."""
        if loc.scheme == "local":
            assert loc.path is not None
            with self._local_lock(loc):
                try:
                    current = sha256_bytes(loc.path.read_bytes())
                except FileNotFoundError:
                    raise ConflictError(f"{loc.uri} was deleted by another writer") from None
                if current != tag:
                    raise ConflictError(f"{loc.uri} was changed by another writer")
                self._atomic_local_write(loc.path, data)
            return sha256_bytes(data)
        from botocore.exceptions import ClientError

        with self._s3_errors(loc):
            try:
                response = self.s3.put_object(
                    Bucket=loc.bucket, Key=loc.key, Body=data, IfMatch=tag, **self._write_extra(content_type)
                )
            except ClientError as exc:
                # S3 answers If-Match on a deleted key with 404 NoSuchKey: for the caller that is a
                # lost race, exactly as on local storage.
                if exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                    raise ConflictError(f"{loc.uri} was deleted by another writer") from None
                raise
        return str(response["ETag"])

    @contextlib.contextmanager
    def _local_lock(self, loc: Location) -> Iterator[None]:
        """An exclusive lock across threads and processes for one local key."""
        lock_dir = self.root / _LOCK_DIR
        lock_dir.mkdir(exist_ok=True)
        lock_path = lock_dir / (sha256_bytes(loc.key.encode()) + ".lock")
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # ----------------------------------------------------------------- DataFrames
    def read_dataframe(
        self, loc: Location, file_format: str | None = None, field: str = "s3_uri", columns: list[str] | None = None
    ) -> pd.DataFrame:
        """Read CSV, Parquet or JSON (records or lines) into a DataFrame, with clear errors."""
        import pandas as pd
        import pyarrow as pa

        from mcp_server.common import data_limits as cap

        fmt = data_format_of(loc, file_format, field)
        limit = self.config.max_dataset_bytes  # what is stored (local_file) and what it expands to (here)
        with self.local_file(loc) as path:
            try:
                if fmt == "parquet":
                    cap.check_parquet(path, columns, limit, loc.uri, field)
                    frame = pd.read_parquet(path, columns=columns)
                elif fmt == "csv":
                    sep = "\t" if loc.name.lower().endswith((".tsv", ".tsv.gz")) else ","
                    frame = cap.read_csv(path, sep, columns, limit, loc.uri, field)
                else:
                    lines = loc.name.lower().endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz"))
                    if lines or _looks_like_lines(path):
                        frame = cap.read_json_lines(path, limit, loc.uri, field)
                    else:
                        cap.check_text(path, limit, loc.uri, field)
                        frame = pd.read_json(path)
                    if columns:
                        frame = frame[columns]
                return cap.check_frame(frame, limit, loc.uri, field)
            except (ValueError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                raise BadFormatError(
                    f"cannot read {loc.uri} as {fmt}: {detail}",
                    field=field,
                    hint="Check the file, or pass file_format if the extension is misleading.",
                ) from None

    def write_dataframe(
        self,
        frame: pd.DataFrame,
        loc: Location,
        file_format: str | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> str:
        """Write a DataFrame (Parquet unless the name or `file_format` says otherwise); returns sha256.

        `lineage` (Parquet only) is stored in the file's key-value metadata under `mlops`: the
        preprocessing tools record there which fitted pipeline produced the data, so trainers
        and evaluators can apply exactly the same steps to raw data later.
        """
        fmt = data_format_of(loc, file_format, "output_s3_uri")
        with self.staged_write(loc) as path:
            if fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                try:
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                except pa.ArrowException as exc:
                    # Mixed-type object columns (e.g. from JSON) cannot become Parquet: say so,
                    # rather than failing "unexpectedly"; nothing has been published yet.
                    detail = str(exc).splitlines()[0][:200]
                    raise BadFormatError(
                        f"cannot write {loc.uri} as parquet: {detail}",
                        hint="Give each column a single type (cast mixed columns to str), or write CSV.",
                    ) from None
                if lineage:
                    meta = dict(table.schema.metadata or {})
                    meta[LINEAGE_KEY] = json.dumps(lineage, default=str).encode()
                    table = table.replace_schema_metadata(meta)
                pq.write_table(table, path)
            elif fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                lines = loc.name.lower().endswith((".jsonl", ".ndjson"))
                frame.to_json(path, orient="records", lines=lines, date_format="iso")
            digest = sha256_file(path)
        return digest

    def arrow_path(self, loc: Location, scratch: str | None = None) -> tuple[str, Any]:
        """`loc` as a (path, pyarrow filesystem) pair, for engines that read (and write) storage
        themselves, on other machines, instead of this process downloading it (Ray Data on a
        cluster): nothing is read here and MLOPS_MAX_DATASET_MB does not apply.

        `loc` comes from `resolve`, so the bucket allow-list and the root confinement have been
        applied; a local path is re-checked (a symlink swapped in since). The S3 filesystem uses
        the region and endpoint of this server's boto3 client and carries no credentials: whoever
        uses it (a cluster's workers) finds its own through the default AWS chain, so no secret
        travels with it. `scratch` instead names a server-owned folder in the scratch area of
        `loc`'s bucket or root (e.g. a cluster run's checkpoints), which no caller can address.
        """
        import pyarrow.fs as pafs

        if scratch is not None:
            name = self._clean_key(scratch, "scratch", scratch)
            if "/" in name:
                raise InvalidInputError(f"scratch folder {scratch!r} must be a single name")
            loc = self._at(loc, f"{SCRATCH_DIR}/{name}")
        if loc.scheme == "local":
            assert loc.path is not None
            real = Path(os.path.realpath(loc.path))
            if real != self.root and self.root not in real.parents:
                raise UnsafePathError(f"{loc.uri} resolves outside the storage root", hint="Use a path inside it.")
            return str(real), pafs.LocalFileSystem()
        endpoint = self.config.aws_endpoint_url
        options: dict[str, Any] = {"region": self.config.aws_region}
        if endpoint:
            parsed = urlparse(endpoint)
            options["endpoint_override"] = parsed.netloc or endpoint
            options["scheme"] = parsed.scheme or "https"
        return f"{loc.bucket}/{loc.key}", pafs.S3FileSystem(**options)

    def read_lineage(self, loc: Location) -> dict[str, Any]:
        """The `lineage` a preprocessing tool stored in a Parquet file ({} for anything else)."""
        if data_format_of(loc, None, "uri") != "parquet":
            return {}
        import pyarrow.parquet as pq

        with self.local_file(loc) as path:
            try:
                meta = pq.read_schema(path).metadata or {}
            except Exception:
                return {}
        raw = meta.get(LINEAGE_KEY)
        return dict(json.loads(raw)) if raw else {}


def _looks_like_lines(path: Path) -> bool:
    """True when a .json file holds one JSON object per line rather than one document."""
    with open(path, "rb") as handle:
        head = handle.read(65536)
    first, _, rest = head.partition(b"\n")
    return first.strip().startswith(b"{") and rest.strip().startswith(b"{")


def pid_alive(pid: int) -> bool:
    """True when process `pid` exists on this host (also when it is someone else's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_backoff(attempt: int, base: float = 0.02, cap: float = 1.0) -> None:
    """Sleep before retrying a lost conditional write (exponential, jittered)."""
    import random

    time.sleep(min(cap, base * 2**attempt) * (0.5 + random.random()))


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()


def parse_json(data: bytes, uri: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadFormatError(f"{uri} is not valid JSON") from None
