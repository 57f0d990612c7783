"""The deployment list and an environment's deployment history."""
import re

import pytest
from django.utils import timezone

from deployments.actions import approve_deployment, reject_deployment, request_rollback
from deployments.models import Deployment
from tests.pages.conftest import text
from tests.pages.deployments.helpers import ask, deployed

# ---------------------------------------------------------------- deployments list and history

def test_the_deployment_list_filters_by_environment_service_and_state(login, viewer, deployer, make_env,
                                                                        make_service, web):
    dev, prod = make_env("dev"), make_env("prod", tier="production", required_approvals=1)
    make_service("api")
    in_dev, in_prod, api_prod = ask(deployer, dev), ask(deployer, prod), ask(deployer, prod, service="api")
    client = login(viewer)
    body = text(client.get("/deployments/?environment=prod&service=web&state=pending_approval"))
    assert f'href="/deployments/{in_prod.pk}/"' in body
    assert f'href="/deployments/{in_dev.pk}/"' not in body and f'href="/deployments/{api_prod.pk}/"' not in body


@pytest.mark.parametrize("count", [3, 30])
def test_the_deployment_list_costs_the_same_queries_for_3_and_30(login, viewer, deployer, make_env, web, count,
                                                                django_assert_max_num_queries):
    for i in range(count):
        deployed(deployer, make_env(f"env-{i}"), f"1.{i}.0")
    client = login(viewer)
    with django_assert_max_num_queries(8):
        response = client.get("/deployments/")
    assert len(re.findall(r'href="/deployments/\d+/"', text(response))) == count


def test_the_history_shows_release_requester_approvers_outcome_and_kind(login, viewer, approver, omar, deployer,
                                                                       prod, web):
    first = ask(deployer, prod, "1.0.0")
    approve_deployment(approver, first.pk)
    approve_deployment(omar, first.pk)
    Deployment.objects.filter(pk=first.pk).update(state="succeeded", finished_at=timezone.now())
    rejected = ask(deployer, prod, "1.1.0")
    reject_deployment(omar, rejected.pk, comment="no")
    body = text(login(viewer).get("/environments/prod/history/?service=web"))
    assert re.search(r"abe, omar\s*</td>", body) or "abe, omar</td>" in body
    assert "state-succeeded" in body and "state-rejected" in body and "by dee" in body
    assert f'<a href="/deployments/{rejected.pk}/">1.1.0</a>' in body


def test_the_history_shows_rollbacks(login, viewer, deployer, prod, web):
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    request_rollback(deployer, live.pk)
    assert '<span class="badge kind-rollback">rollback</span>' in text(login(viewer).get("/environments/prod/history/"))
