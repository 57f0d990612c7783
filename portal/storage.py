"""The gateway to object storage: S3 (or any S3-compatible store such as MinIO) and a local directory.

The only module that imports boto3. Backups stream through `Store.upload(key, chunks)`, which
never holds more than two parts in memory:

- S3: a multipart upload (one part sent while the next fills) whose part size grows with the upload
  (`part_size_of`: `PART_SIZE` for the first `PARTS_PER_STEP` parts, then doubling every
  `PARTS_PER_STEP` parts, at most `MAX_PART_SIZE`), so a dump of unknown size can reach S3's object
  limit within its 10,000 parts; any failure aborts the upload, so no partial object is left behind
  and no parts are billed. `on_started(upload_ref)` is called as soon as
  the upload exists, so its id can be written down and a dead worker's upload aborted later
  (`Store.abandon`).
- local directory: the bytes go to a temporary name next to the final one (written back to disk as
  they come, every 32 MiB), are flushed to disk, and the file is renamed when complete; a failure
  removes the temporary file.

Errors are `StorageError` with a sentence that says what to fix.
"""
import base64
import errno
import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

MiB, GiB, TiB = 1024 ** 2, 1024 ** 3, 1024 ** 4
PART_SIZE = 8 * MiB  # the first parts; S3 wants >= 5 MiB per part except the last
PARTS_PER_STEP = 1000  # the part size doubles after every this many parts
MAX_PART_SIZE = 5 * GiB  # S3's largest part
MAX_PARTS = 10_000  # S3's most parts in one upload
MAX_OBJECT_SIZE = 5 * TiB  # S3's largest object
READ_CHUNK = 1024 * 1024
TEMP_MARK = ".partial-"


class StorageError(Exception):
    """A storage operation failed; `str()` says what to fix."""


def open_store(destination, credentials=None):
    """A store for a destination dict: `{kind: "local", path}` or `{kind: "s3", bucket, prefix, endpoint_url, region}`.

    `credentials` is `{access_key_id, secret_access_key}` (or empty: boto3's usual chain)."""
    kind = (destination or {}).get("kind")
    if kind == "local":
        return LocalStore(destination["path"])
    if kind == "s3":
        return S3Store(destination["bucket"], endpoint_url=destination.get("endpoint_url") or None,
                       region=destination.get("region") or None, credentials=credentials or {})
    raise StorageError(f"unknown destination kind {kind!r}: use 'local' or 's3'")


def _disk_error(exc, where):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageError(f"the destination {where} is full ({exc.strerror}); free space there or choose another "
                            "directory, then run the backup again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"Gantry's worker may not write to {where} ({exc.strerror}); give it write access "
                            "or choose another directory")
    return StorageError(f"writing to {where} failed: {exc.strerror or exc}")


WRITEBACK_EVERY = 32 * 1024 * 1024


def _start_writeback(handle, end):
    """Ask the kernel to start writing the first `end` bytes to disk now and not to keep it cached (a backup is
    not read back soon): the final fsync then waits for the last few MiB only, not the whole dump, and
    the backup does not push the database's own pages out of the page cache. Returns `end`."""
    handle.flush()
    with suppress(OSError, AttributeError):
        os.posix_fadvise(handle.fileno(), 0, end, os.POSIX_FADV_DONTNEED)  # pages written back by now leave the cache
    return end


class LocalStore:
    kind = "local"

    def __init__(self, path):
        self.root = os.path.abspath(path)

    def _path(self, key):
        full = os.path.abspath(os.path.join(self.root, key))
        if not full.startswith(self.root + os.sep):
            raise StorageError(f"the key {key!r} points outside {self.root}")
        return full

    def location(self, key):
        return "file://" + self._path(key)

    def upload(self, key, chunks, on_started=None):
        """Write `chunks` to `key` under a temporary name, rename when complete. Returns bytes written."""
        final = self._path(key)
        temp = f"{final}{TEMP_MARK}{uuid.uuid4().hex[:12]}"
        try:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            handle = open(temp, "xb")  # noqa: SIM115  (closed by the `with handle` below; opened apart to word the error)
        except OSError as exc:
            raise _disk_error(exc, self.root) from exc
        if on_started:
            on_started(temp)
        size = flushed = 0
        try:
            with handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                    if size - flushed >= WRITEBACK_EVERY:
                        flushed = _start_writeback(handle, size)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(temp)
            raise _disk_error(exc, self.root) from exc
        except BaseException:
            with suppress(OSError):
                os.unlink(temp)
            raise
        return size

    def abandon(self, key, upload_ref):
        """Remove what an interrupted upload left (its temporary file). Safe to call twice."""
        if upload_ref and TEMP_MARK in os.path.basename(upload_ref):
            with suppress(FileNotFoundError):
                os.unlink(upload_ref)

    def download(self, key, chunk_size=READ_CHUNK):
        """Yield the object's bytes in chunks."""
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115  (closed by the `with handle` below; opened apart to word the error)
        except FileNotFoundError as exc:
            raise StorageError(f"{self.location(key)} no longer exists") from exc
        with handle:
            while True:
                chunk = handle.read(chunk_size)
                if not chunk:
                    return
                yield chunk

    def delete(self, key):
        with suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def exists(self, key):
        return os.path.isfile(self._path(key))

    def list(self, prefix=""):
        """[(key, size)] of complete objects under prefix (temporary files are not objects)."""
        found = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if TEMP_MARK in name:
                    continue
                full = os.path.join(dirpath, name)
                key = os.path.relpath(full, self.root)
                if key.startswith(prefix):
                    found.append((key, os.path.getsize(full)))
        return sorted(found)

    def pending_uploads(self, prefix=""):
        """Temporary files of uploads in progress or interrupted."""
        found = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if TEMP_MARK in name:
                    key = os.path.relpath(os.path.join(dirpath, name), self.root)
                    if key.startswith(prefix):
                        found.append(key)
        return sorted(found)


def part_size_of(number, first=PART_SIZE, per_step=PARTS_PER_STEP, largest=MAX_PART_SIZE):
    """The size of multipart part `number` (1-based): `first` for the first `per_step` parts, then
    doubling every `per_step` parts, never above `largest`. With the defaults: 8 MiB up to part 1,000
    (7.8 GiB so far), 16 MiB up to part 2,000 (23 GiB), ... 4 GiB from part 9,001 (3.9 TiB so far), so
    S3's 5 TiB object fits in its 10,000 parts (about 9,282 of them)."""
    return min(first << ((number - 1) // per_step), largest)


def _size_text(size):
    for unit, name in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (1024, "KiB")):
        if size >= unit:
            return f"{size / unit:.3g} {name}"
    return f"{size} bytes"


class S3Store:
    kind = "s3"

    def __init__(self, bucket, endpoint_url=None, region=None, credentials=None, *, part_size=PART_SIZE,
                 parts_per_step=PARTS_PER_STEP, max_part_size=MAX_PART_SIZE, max_parts=MAX_PARTS,
                 max_object_size=MAX_OBJECT_SIZE):
        """The keyword arguments are S3's limits and the part-size schedule (`part_size_of`); tests make them
        tiny."""
        self.part_size, self.parts_per_step, self.max_part_size = part_size, parts_per_step, max_part_size
        self.max_parts, self.max_object_size = max_parts, max_object_size

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        credentials = credentials or {}
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            aws_access_key_id=credentials.get("access_key_id") or None,
            aws_secret_access_key=credentials.get("secret_access_key") or None,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60),
        )

    def location(self, key):
        return f"s3://{self.bucket}/{key}"

    def _explain(self, exc, action):
        where = f"s3://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        if isinstance(exc, NoCredentialsError):
            return StorageError(f"no S3 credentials for {where}: give the destination an access key id and secret, "
                                "or configure the worker's AWS credentials")
        if isinstance(exc, EndpointConnectionError):
            return StorageError(f"cannot reach the S3 endpoint {self.endpoint_url or 'of AWS'}: check endpoint_url "
                                "and that the worker can connect to it")
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket",):
                return StorageError(f"the bucket {self.bucket} does not exist{' at ' + self.endpoint_url if self.endpoint_url else ''}: "
                                    "create it or correct the destination's bucket name")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                return StorageError(f"S3 refused to {action} in {where} ({code}): check the access key id, the "
                                    "secret and the bucket policy")
            if code in ("NoSuchKey", "404"):
                return StorageError(f"{where} has no such object: it was deleted or never completed")
            return StorageError(f"S3 could not {action} in {where}: {code or exc}")
        return StorageError(f"S3 could not {action} in {where}: {exc}")

    def _part_size(self, number):
        return part_size_of(number, self.part_size, self.parts_per_step, self.max_part_size)

    def _too_large(self, size):
        """The refusal of a dump that S3 cannot hold in one object (its size so far is `size`)."""
        return StorageError(
            f"the dump passed {_size_text(size)}, more than one S3 object can hold here (at most "
            f"{self.max_parts:,} parts growing from {_size_text(self.part_size)} to {_size_text(self.max_part_size)}, "
            f"at most {_size_text(self.max_object_size)} in all): the upload was aborted; back this database up "
            "to a local directory destination instead, or split it into several targets (e.g. one per schema)")

    def _fit_buffer(self, buffers, index, number, target):
        """Make `buffers[index]` hold exactly part `number`'s `target` bytes: replaced only when the part
        size stepped up (the old buffer dropped before its successor is allocated)."""
        if len(buffers[index]) != target and number <= self.max_parts:
            buffers[index] = None
            buffers[index] = bytearray(target)

    def upload(self, key, chunks, on_started=None):
        """Multipart upload of `chunks` to `key`; aborted on any failure. Returns bytes written.

        One part is sent (by a helper thread) while the next one fills, so the dump never waits for
        the network unless the network is the slower of the two. Part sizes follow `part_size_of`
        (8 MiB, doubling every 1,000 parts), so an upload of unknown size can reach S3's 5 TiB object
        within its 10,000 parts; a dump larger than that (or than `max_object_size`, or needing more
        than `max_parts`) fails with a `StorageError` that says so, and the upload is aborted.

        Memory: two part buffers, a buffer replaced by a bigger one only when the part size steps up
        (not one allocation per part). Peak: two parts of the current size (at a step, the part in
        flight at the old size plus one new buffer, which is less), i.e. 16 MiB for dumps up to
        7.8 GiB, 32 MiB up to 23 GiB, 64 MiB up to 55 GiB, then about 2 MiB per GiB of dump (0.2 %):
        256 MiB at 117 GiB, 2 GiB at 1 TiB, 8 GiB only past 3.9 TiB (the price of S3's 10,000 parts)."""

        try:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        except (BotoCoreError, ClientError) as exc:
            raise self._explain(exc, "start an upload") from exc
        if on_started:
            on_started(upload_id)
        parts, size, sending, number = [], 0, None, 1  # `number`: the part now filling
        # Two part buffers used in turn: one is sent while the other fills. A buffer is replaced by a
        # bigger one only when the part it is about to hold is bigger (the part size steps up), so there
        # is no allocation per part to fragment the heap.
        target = self._part_size(1)
        buffers, current, filled = [bytearray(target), bytearray(0)], 0, 0

        def send(number, data):
            answer = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                             Body=data)
            return {"PartNumber": number, "ETag": answer["ETag"]}

        sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-part")
        try:
            def hand_over(data):
                nonlocal sending
                if sending is not None:
                    parts.append(sending.result())  # the other buffer is free again (or its error raised)
                sending = sender.submit(send, number, data)

            for chunk in chunks:
                size += len(chunk)
                if size > self.max_object_size:
                    raise self._too_large(size)
                view, start = memoryview(chunk), 0
                while start < len(view):
                    if number > self.max_parts:
                        raise self._too_large(size)
                    take = min(target - filled, len(view) - start)
                    buffers[current][filled:filled + take] = view[start:start + take]
                    filled, start = filled + take, start + take
                    if filled == target:
                        hand_over(buffers[current])  # waits for the other buffer's part: it is free now
                        current, filled, number = 1 - current, 0, number + 1
                        target = self._part_size(number)
                        self._fit_buffer(buffers, current, number, target)
            if filled or (not parts and sending is None):
                hand_over(bytes(buffers[current][:filled]))  # the last part, shorter
            parts.append(sending.result())
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException as exc:
            if sending is not None:
                sending.cancel()
            sender.shutdown(wait=True)
            self.abandon(key, upload_id)
            if isinstance(exc, (BotoCoreError, ClientError)):
                raise self._explain(exc, "upload") from exc
            raise
        sender.shutdown(wait=True)
        return size

    def abandon(self, key, upload_ref):
        """Abort an interrupted multipart upload (its parts are discarded). Safe to call twice."""

        if not upload_ref:
            return
        with suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_ref)

    def pending_uploads(self, prefix=""):
        """Keys of multipart uploads started and neither completed nor aborted."""

        try:
            answer = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        except (BotoCoreError, ClientError) as exc:
            raise self._explain(exc, "list uploads") from exc
        return [(u["Key"], u["UploadId"]) for u in answer.get("Uploads", [])]

    def download(self, key, chunk_size=READ_CHUNK):
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise self._explain(exc, "read") from exc
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def delete(self, key):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise self._explain(exc, "delete") from exc

    def exists(self, key):
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError:
            return False

    def list(self, prefix=""):
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found += [(obj["Key"], obj["Size"]) for obj in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise self._explain(exc, "list") from exc
        return sorted(found)

    # ------------------------------------------------------------ Object Lock (audit checkpoints)

    def object_lock(self):
        """The bucket's Object Lock, or None when it is not enabled: `{"mode", "days"}` of its default
        retention (both None when it has no default rule)."""

        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ObjectLockConfigurationNotFoundError":
                return None
            raise self._explain(exc, "read the Object Lock configuration") from exc
        except BotoCoreError as exc:
            raise self._explain(exc, "read the Object Lock configuration") from exc
        if config.get("ObjectLockEnabled") != "Enabled":
            return None
        default = (config.get("Rule") or {}).get("DefaultRetention") or {}
        days = default.get("Days") or (default["Years"] * 366 if default.get("Years") else None)
        return {"mode": default.get("Mode"), "days": days}

    def put_locked(self, key, data, mode, retain_until):
        """Write one small object with its own Object Lock retention (`mode` COMPLIANCE or GOVERNANCE,
        until `retain_until`), whatever the bucket's default. Returns the object's version id."""

        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()  # S3 wants it with a lock
        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5,
                                            ObjectLockMode=mode, ObjectLockRetainUntilDate=retain_until)
        except (BotoCoreError, ClientError) as exc:
            raise self._explain(exc, "write a locked object") from exc
        return answer.get("VersionId")
