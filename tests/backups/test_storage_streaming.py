"""The S3 gateway's streaming upload against moto over HTTP: several parts (one sent while the next fills)
arrive whole and in order; the part size grows with the upload; a failure mid-stream (or a dump larger
than S3 can hold) leaves no object and no open upload."""
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


KiB = 1024


@pytest.fixture
def tiny_parts_store(s3_bucket, monkeypatch):
    """A store on the same moto bucket whose part-size schedule and limits are given per test, with
    moto's own 5 MiB minimum part lowered (the server runs in this process) so tiny parts are accepted."""
    from portal.storage import S3Store

    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1)
    destination, store = s3_bucket

    def make(**limits):
        return S3Store(store.bucket, endpoint_url=destination["endpoint_url"], credentials={
            "access_key_id": destination["access_key_id"], "secret_access_key": destination["secret_access_key"]},
            **limits)
    return make


def test_the_part_size_doubles_every_step_up_to_the_largest_part(tiny_parts_store, monkeypatch):
    from portal.storage import part_size_of

    store = tiny_parts_store(part_size=64 * KiB, parts_per_step=3, max_part_size=256 * KiB)
    recorded = []
    real_complete = store.client.complete_multipart_upload

    def complete_after_listing(**kwargs):  # what S3 holds just before the upload becomes an object
        listed = store.client.list_parts(Bucket=kwargs["Bucket"], Key=kwargs["Key"], UploadId=kwargs["UploadId"])
        recorded.extend((p["PartNumber"], p["Size"]) for p in listed["Parts"])
        return real_complete(**kwargs)

    monkeypatch.setattr(store.client, "complete_multipart_upload", complete_after_listing)
    data, chunks = chunks_of(3 * 64 * KiB + 3 * 128 * KiB + 2 * 256 * KiB + 1000, size=50 * KiB + 3)

    assert store.upload("db/grown.dump", iter(chunks)) == len(data)

    assert recorded == [(1, 64 * KiB), (2, 64 * KiB), (3, 64 * KiB), (4, 128 * KiB), (5, 128 * KiB),
                        (6, 128 * KiB), (7, 256 * KiB), (8, 256 * KiB), (9, 1000)]
    head = store.client.head_object(Bucket=store.bucket, Key="db/grown.dump")
    assert head["ETag"].strip('"').endswith("-9") and head["ContentLength"] == len(data)
    assert b"".join(store.download("db/grown.dump")) == data
    # the real schedule: 8 MiB doubling every 1,000 parts reaches S3's 5 TiB within its 10,000 parts
    assert [part_size_of(n) // (1024 * KiB) for n in (1, 1000, 1001, 9001, 10_000)] == [8, 8, 16, 4096, 4096]
    assert sum(part_size_of(n) for n in range(1, 10_001)) >= 5 * 1024 ** 4


@pytest.mark.parametrize("limits", [{"max_parts": 3}, {"max_object_size": 150 * KiB}],
                         ids=["more parts than allowed", "larger than the largest object"])
def test_a_dump_larger_than_s3_can_hold_fails_with_a_sentence_and_no_upload_left(tiny_parts_store, limits):
    from portal.storage import StorageError

    store = tiny_parts_store(part_size=64 * KiB, parts_per_step=1000, **limits)
    _data, chunks = chunks_of(4 * 64 * KiB, size=10 * KiB)
    started = []

    with pytest.raises(StorageError, match=r"the dump passed .*, more than one S3 object can hold here .*: the "
                                           r"upload was aborted; back this database up to a local directory"):
        store.upload("db/huge.dump", iter(chunks), on_started=started.append)

    assert started and store.pending_uploads() == [] and not store.exists("db/huge.dump")


def test_exactly_the_most_parts_allowed_still_succeeds(tiny_parts_store):
    store = tiny_parts_store(part_size=64 * KiB, parts_per_step=1000, max_parts=3)
    data, chunks = chunks_of(3 * 64 * KiB, size=10 * KiB)
    assert store.upload("db/full.dump", iter(chunks)) == len(data)
    assert b"".join(store.download("db/full.dump")) == data
