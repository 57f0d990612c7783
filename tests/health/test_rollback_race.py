"""Two Gantry workers acting on the same failed verification never both roll back."""
import threading

import pytest
from django.db import connection

from deployments.models import Deployment
from deployments.monitoring import verification as verifying
from deployments.monitoring.models import AutoRollback, Verification
from deployments.monitoring.rollback import auto_rollback

from .conftest import deploy

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(count, target):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_two_workers_rolling_back_at_once_make_one_rollback(deployer, staging, web):
    first = deploy(deployer, staging, "1.0.0")
    v = Verification.objects.get(deployment=first)
    verifying.evaluate(v.pk, now=v.ends_at)
    second = deploy(deployer, staging, "2.0.0")
    rows = _in_threads(2, lambda: auto_rollback(second.pk, "verification failed: test").pk)
    assert len(set(rows)) == 1
    assert Deployment.objects.filter(rollback_of=second).count() == 1
    assert AutoRollback.objects.get().outcome == "started"


def test_two_workers_stepping_the_same_verification_step_it_once(deployer, staging, web):
    first = deploy(deployer, staging, "1.0.0")
    v = Verification.objects.get(deployment=first)
    stepped = _in_threads(2, lambda: verifying.evaluate(v.pk, now=v.started_at) is not None)
    assert Verification.objects.get(pk=v.pk).probes == sum(stepped) >= 1
