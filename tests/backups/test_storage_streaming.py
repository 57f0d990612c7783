"""The S3 gateway's streaming upload against moto over HTTP: several parts (one sent while the next fills)
arrive whole and in order; a failure mid-stream leaves no object and no open upload."""
import hashlib
import os

import pytest


def chunks_of(total, size=1024 * 1024 - 17):  # odd chunk sizes: parts do not line up with chunks
    data = os.urandom(total)
    return data, [data[i:i + size] for i in range(0, total, size)]


def test_a_multi_part_upload_arrives_whole_and_in_order(s3_bucket):
    _destination, store = s3_bucket
    data, chunks = chunks_of(21 * 1024 * 1024 + 5)
    started = []

    assert store.upload("db/a.dump", iter(chunks), on_started=started.append) == len(data)

    stored = b"".join(store.download("db/a.dump"))
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    head = store.client.head_object(Bucket=store.bucket, Key="db/a.dump")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: >= 8 MiB, >= 8 MiB, the rest
    assert started and store.pending_uploads() == []


def test_an_empty_stream_is_one_empty_object(s3_bucket):
    _destination, store = s3_bucket
    assert store.upload("db/empty.dump", iter([])) == 0
    assert b"".join(store.download("db/empty.dump")) == b""


def test_a_stream_failing_after_two_parts_leaves_no_object_and_no_open_upload(s3_bucket):
    _destination, store = s3_bucket
    _data, chunks = chunks_of(20 * 1024 * 1024)

    def failing():
        yield from chunks
        raise RuntimeError("pg_dump died")

    with pytest.raises(RuntimeError, match="pg_dump died"):
        store.upload("db/b.dump", failing())
    assert store.pending_uploads() == [] and not store.exists("db/b.dump")


def test_a_part_refused_by_s3_aborts_the_upload_with_a_sentence(s3_bucket, monkeypatch):
    from botocore.exceptions import ClientError

    from portal.storage import StorageError

    _destination, store = s3_bucket
    real = store.client.upload_part

    def second_part_refused(**kwargs):
        if kwargs["PartNumber"] == 2:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "UploadPart")
        return real(**kwargs)

    monkeypatch.setattr(store.client, "upload_part", second_part_refused)
    _data, chunks = chunks_of(30 * 1024 * 1024)
    with pytest.raises(StorageError, match=r"S3 refused to upload in s3://.* \(AccessDenied\)"):
        store.upload("db/c.dump", iter(chunks))
    monkeypatch.undo()
    assert store.pending_uploads() == [] and not store.exists("db/c.dump")
