"""A repository in S3-compatible object storage (boto3): small objects in one PUT, large ones as multipart
uploads whose completion is the moment they become visible. boto3 is imported only when a command uses S3."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from cuisine_db.errors import RefusedError
from cuisine_db.storage.base import (
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    ObjectWriter,
    Readable,
    Repository,
    RepositoryError,
    check_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
MIN_PART = 8 << 20
MAX_PARTS = 10_000
UPLOAD_THREADS = 4
READ_RETRIES = 3
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
LOCK_MODE = "COMPLIANCE"  # nobody, not even the account's root user, can shorten it or delete a locked version
_AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "ExpiredToken"}


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the repository lives and how to reach it; credentials are values already read from variables."""

    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    # Object Lock retention on every object written: COMPLIANCE mode until now + this many days (docs/security.md).
    lock_days: int | None = None

    def __repr__(self) -> str:  # never print credentials, whatever asks
        return f"S3Location(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={self.endpoint!r})"


class _Errors:
    """Turns botocore's exceptions into repository errors that name the key and what to check."""

    def __init__(self, repository: S3Repository) -> None:
        self.repository = repository

    def call(self, key: str, action: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        url = self.repository.url
        try:
            return action()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise ObjectMissing(f"repository {url}: {key} is missing") from None
            if code in _EXISTS_CODES:
                raise ObjectExists(f"repository {url}: {key} already exists") from None
            if code == "NoSuchBucket":
                raise RepositoryError(f"repository {url}: bucket {self.repository.location.bucket!r} does not exist",
                                      hint="create the bucket, or fix backup.repository in cuisine-db.toml") from None
            if code == "InvalidRequest" and "ObjectLock" in str(exc.response.get("Error", {}).get("Message", "")):
                raise RefusedError(f"repository {url}: bucket {self.repository.location.bucket!r} has no Object Lock, "
                                   f"so object_lock_days = {self.repository.location.lock_days} cannot be honoured; "
                                   f"{key} was not written",
                                   hint="use a bucket created with Object Lock enabled, or remove object_lock_days"
                                   ) from None
            if code in _AUTH_CODES:
                raise RepositoryError(f"repository {url}: access denied ({code}) for {key}",
                                      hint="check backup.s3_access_key_env / s3_secret_key_env and the bucket policy"
                                      ) from None
            raise RepositoryError(f"repository {url}: {key}: {code or exc}") from None
        except NoCredentialsError:
            raise RepositoryError(f"repository {url}: no S3 credentials",
                                  hint="set backup.s3_access_key_env and s3_secret_key_env to the names of "
                                       "variables holding them") from None
        except BotoCoreError as exc:
            raise RepositoryError(f"repository {url}: cannot reach the object store: {exc}") from None


class _MultipartWriter(ObjectWriter):
    """Buffers a part, uploads parts on a few threads; nothing is visible until CompleteMultipartUpload."""

    def __init__(self, repository: S3Repository, key: str) -> None:
        super().__init__(key)
        self.repository = repository
        self.name = repository.name(key)
        self.buffer = bytearray()
        self.part_size = MIN_PART
        self.upload_id: str | None = None
        self.parts: list[Future[Any]] = []
        self.pool: ThreadPoolExecutor | None = None
        self.slots = threading.BoundedSemaphore(UPLOAD_THREADS + 1)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.buffer += data
        self.size += len(data)
        while len(self.buffer) >= self.part_size:
            part = bytes(self.buffer[: self.part_size])
            del self.buffer[: self.part_size]
            self._send(part)
        return len(data)

    def _send(self, part: bytes) -> None:
        client = self.repository.client
        if self.upload_id is None:
            lock = self.repository.lock()
            started = self.repository.errors.call(self.key, lambda: client.create_multipart_upload(
                Bucket=self.repository.location.bucket, Key=self.name, **lock))
            self.upload_id = started["UploadId"]
            self.pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="s3-part")
        number = len(self.parts) + 1
        # Parts may differ in size; growing them keeps very large objects under S3's 10,000-part limit.
        if number % 1000 == 0:
            self.part_size *= 2
        for earlier in self.parts:
            if earlier.done():
                earlier.result()  # a failed part upload stops the object here
        self.slots.acquire()
        upload_id = self.upload_id
        pool = self.pool
        if pool is None:
            raise RuntimeError("multipart upload without its thread pool")

        def upload() -> Any:
            try:
                answer = self.repository.errors.call(self.key, lambda: client.upload_part(
                    Bucket=self.repository.location.bucket, Key=self.name, UploadId=upload_id,
                    PartNumber=number, Body=part, **self.repository.md5(part)))
                return {"PartNumber": number, "ETag": answer["ETag"]}
            finally:
                self.slots.release()

        self.parts.append(pool.submit(upload))

    def _commit(self, overwrite: bool) -> None:
        client = self.repository.client
        bucket = self.repository.location.bucket
        conditions: dict[str, Any] = {} if overwrite else {"IfNoneMatch": "*"}
        if self.upload_id is None:
            body = bytes(self.buffer)
            extra = {**conditions, **self.repository.lock(), **self.repository.md5(body)}
            self.repository.errors.call(self.key, lambda: client.put_object(
                Bucket=bucket, Key=self.name, Body=body, **extra))
            return
        if self.buffer or not self.parts:
            self._send(bytes(self.buffer))
            self.buffer.clear()
        parts = [future.result() for future in self.parts]
        upload_id = self.upload_id
        self.repository.errors.call(self.key, lambda: client.complete_multipart_upload(
            Bucket=bucket, Key=self.name, UploadId=upload_id, MultipartUpload={"Parts": parts}, **conditions))
        self._shutdown()

    def _abort(self) -> None:
        self.buffer.clear()
        self._shutdown()
        if self.upload_id is not None:
            upload_id = self.upload_id
            with contextlib.suppress(RepositoryError):
                self.repository.errors.call(self.key, lambda: self.repository.client.abort_multipart_upload(
                    Bucket=self.repository.location.bucket, Key=self.name, UploadId=upload_id))

    def _shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class _Reader:
    """A streamed GET that resumes with a Range request when the connection drops mid-object."""

    def __init__(self, repository: S3Repository, key: str) -> None:
        self.repository = repository
        self.key = key
        self.position = 0
        self.retries = 0
        self.body = self._open()

    def _open(self) -> Any:
        client, bucket, name = self.repository.client, self.repository.location.bucket, self.repository.name(self.key)
        if self.position:
            answer = self.repository.errors.call(self.key, lambda: client.get_object(
                Bucket=bucket, Key=name, Range=f"bytes={self.position}-"))
        else:
            answer = self.repository.errors.call(self.key, lambda: client.get_object(Bucket=bucket, Key=name))
        return answer["Body"]

    def read(self, size: int = -1, /) -> bytes:
        from botocore.exceptions import BotoCoreError

        while True:
            try:
                data: bytes = self.body.read(size if size >= 0 else None)
            except (BotoCoreError, OSError) as exc:
                if self.retries >= READ_RETRIES:
                    raise RepositoryError(f"repository {self.repository.url}: reading {self.key} failed: {exc}"
                                          ) from None
                self.retries += 1
                with contextlib.suppress(Exception):
                    self.body.close()
                self.body = self._open()
                continue
            self.position += len(data)
            return data

    def close(self) -> None:
        self.body.close()


class S3Repository(Repository):
    """Objects under s3://bucket/prefix/."""

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self.url = f"s3://{location.bucket}/{location.prefix}".rstrip("/")
        self.errors = _Errors(self)
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10,
                                read_timeout=120, max_pool_connections=16,
                                s3={"addressing_style": "path"} if self.location.endpoint else None,
                                request_checksum_calculation="when_required",
                                response_checksum_validation="when_required")
                self._client = boto3.client(
                    "s3", endpoint_url=self.location.endpoint, region_name=self.location.region or "us-east-1",
                    aws_access_key_id=self.location.access_key, aws_secret_access_key=self.location.secret_key,
                    config=config)
            return self._client

    def lock(self) -> dict[str, Any]:
        """The Object Lock retention a new object carries (none without object_lock_days)."""
        if not self.location.lock_days:
            return {}
        return {"ObjectLockMode": LOCK_MODE,
                "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=self.location.lock_days)}

    def md5(self, body: bytes) -> dict[str, Any]:
        """S3 takes a write with Object Lock retention only with the body's Content-MD5."""
        if not self.location.lock_days:
            return {}
        import base64
        import hashlib

        return {"ContentMD5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()}

    def name(self, key: str) -> str:
        check_key(key)
        return f"{self.location.prefix}/{key}" if self.location.prefix else key

    def open_write(self, key: str) -> ObjectWriter:
        return _MultipartWriter(self, key)

    def open_read(self, key: str) -> Readable:
        return _Reader(self, key)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.errors.call(key, lambda: self.client.head_object(Bucket=self.location.bucket,
                                                                           Key=self.name(key)))
        except ObjectMissing:
            return None
        return ObjectInfo(key, int(answer["ContentLength"]), answer["LastModified"].astimezone(UTC))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = f"{self.location.prefix}/" if self.location.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket,
                                                                      Prefix=base + prefix)
        iterator = iter(pages)
        while True:
            page = self.errors.call(prefix or "/", lambda: next(iterator, None))
            if page is None:
                return
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][len(base):], int(item["Size"]), item["LastModified"].astimezone(UTC))

    def delete(self, keys: Iterable[str]) -> None:
        names = [self.name(key) for key in keys]
        for start in range(0, len(names), 1000):
            batch = [{"Key": name} for name in names[start:start + 1000]]
            answer = self.errors.call(names[start], lambda batch=batch: self.client.delete_objects(  # type: ignore[misc]
                Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True}))
            failed = answer.get("Errors", [])
            if failed:
                raise RepositoryError(f"repository {self.url}: could not delete {failed[0].get('Key')}: "
                                      f"{failed[0].get('Message')}")

    def cleanup(self, older_than: timedelta) -> int:
        """Abort multipart uploads that a killed run started and never completed."""
        limit = datetime.now(UTC) - older_than
        base = f"{self.location.prefix}/" if self.location.prefix else ""
        answer = self.errors.call("/", lambda: self.client.list_multipart_uploads(Bucket=self.location.bucket,
                                                                                  Prefix=base))
        removed = 0
        for upload in answer.get("Uploads", []):
            if upload["Initiated"].astimezone(UTC) < limit:
                self.errors.call(upload["Key"], lambda upload=upload: self.client.abort_multipart_upload(  # type: ignore[misc]
                    Bucket=self.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]))
                removed += 1
        return removed
