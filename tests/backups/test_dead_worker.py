"""A real worker killed with SIGKILL in the middle of a backup: the reaper fails its job, the backup becomes
failed and its multipart upload is aborted (no orphaned parts)."""
import django_rq
import psycopg
import pytest

from environments.backups.models import Backup
from environments.backups.periodic import fail_interrupted
from environments.backups.services import start_backup
from portal.jobs.services import reap_stale_jobs
from tests.workers import kill_worker_and_work_horse, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_queues():
    django_rq.get_connection("backups").flushdb()
    yield
    django_rq.get_connection("backups").flushdb()


def test_a_backup_whose_worker_dies_fails_and_leaves_no_upload(admin, staging, source_db, make_target, s3_bucket):
    destination, store = s3_bucket
    target = make_target(staging, source_db, destination)
    # Someone holds a lock on a table: pg_dump waits for it, so the worker is caught mid-backup.
    blocker = psycopg.connect(source_db)
    blocker.execute("LOCK TABLE sales.orders IN ACCESS EXCLUSIVE MODE")
    worker = start_worker("backups")
    try:
        backup = start_backup(target, user=admin)
        assert wait_for(lambda: Backup.objects.filter(pk=backup.pk, state="running").exclude(upload_ref="").exists(),
                        timeout=60), "the worker never started the upload"
        assert len(store.pending_uploads()) == 1  # a multipart upload is open
    finally:
        kill_worker_and_work_horse(worker.pid)
        worker.wait(timeout=10)
        blocker.close()

    assert wait_for(lambda: reap_stale_jobs() == 1, timeout=20)
    assert fail_interrupted() == 1

    backup.refresh_from_db()
    assert backup.state == "failed"
    assert backup.error.startswith("the backup was interrupted (the worker ")
    assert backup.error.endswith("its partial upload was aborted. Start a new backup.")
    assert store.pending_uploads() == [] and store.list() == []
    assert fail_interrupted() == 0  # done once
