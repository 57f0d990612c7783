"""The approvals inbox and the navigation badge."""
import re

import pytest
from django.contrib.auth.models import Group

from deployments.actions import approve_deployment
from tests.pages.conftest import text
from tests.pages.deployments.helpers import ask

# ---------------------------------------------------------------- the approvals inbox

def test_it_lists_only_what_the_user_may_decide(login, make_user, make_env, deployer, web):
    prod = make_env("prod", tier="production", required_approvals=1)
    staging = make_env("staging", tier="staging", required_approvals=1)
    mine, theirs = ask(deployer, prod), ask(deployer, staging, "1.2.0")
    body = text(login(make_user("pia", ("approver", prod), ("viewer", staging))).get("/approvals/"))
    assert f'href="/deployments/{mine.pk}/"' in body
    assert f'href="/deployments/{theirs.pk}/"' not in body


def test_it_shows_what_each_waiting_deployment_still_needs(login, approver, omar, deployer, prod, web):
    deployment = ask(deployer, prod)
    approve_deployment(omar, deployment.pk)
    body = text(login(approver).get("/approvals/"))
    assert "tier-production" in body and "web</strong> 1.1.0" in body and "dee" in body
    assert re.search(r"<td>1 <span class=\"muted\">of 2</span></td>", body)
    assert "minute" in body  # how long it has waited


def test_it_flags_a_break_glass_request_in_the_inbox(login, make_user, approver, prod, web):
    boss = make_user("bea", "admin")
    ask(boss, prod, break_glass={"reason": "payments down"})
    body = text(login(approver).get("/approvals/"))
    assert "break-glass" in body and "<td>3 <span" in body


def test_the_inbox_is_empty_for_the_requester_when_self_approval_is_prevented(login, make_user, prod, web):
    both = make_user("bo", "deployer", "approver")
    deployment = ask(both, prod)
    body = text(login(both).get("/approvals/"))
    assert "Nothing waits for your decision" in body and f'href="/deployments/{deployment.pk}/"' not in body


def test_the_nav_badge_counts_what_the_user_may_decide(login, approver, deployer, prod, web):
    ask(deployer, prod)
    ask(deployer, prod, "1.2.0")
    client = login(approver)
    assert '<img class="nav-badge" src="/approvals/badge.svg"' in text(client.get("/"))
    response = client.get("/approvals/badge.svg")
    assert response["Content-Type"] == "image/svg+xml" and "no-cache" in response["Cache-Control"]
    assert re.search(r'aria-label="2 waiting".*>2</text>', text(response))


def test_the_nav_badge_is_empty_when_nothing_waits(login, deployer, prod, web):
    ask(deployer, prod)
    assert 'width="0"' in text(login(deployer).get("/approvals/badge.svg"))


def test_the_nav_badge_is_a_live_fragment(login, approver, deployer, prod, web):
    client = login(approver)
    page = text(client.get("/"))
    assert ('<span id="nav-approvals" class="nav-approvals" hx-get="/approvals/count/" '
            'hx-trigger="load, every 1s" hx-swap="outerHTML">') in page
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "nav-approvals"}
    first = client.get("/approvals/count/", **poll)
    assert "nav-count" not in text(first)
    tag = first["ETag"]
    assert client.get("/approvals/count/", HTTP_IF_NONE_MATCH=tag, **poll).status_code == 304
    ask(deployer, prod)
    response = client.get("/approvals/count/", HTTP_IF_NONE_MATCH=tag, **poll)
    assert response.status_code == 200
    assert '<span class="nav-count">1<span class="visually-hidden"> waiting for your decision</span>' in text(response)



@pytest.mark.parametrize("count", [3, 30])
def test_the_inbox_costs_the_same_queries_for_3_and_30_pending_deployments(
        login, approver, deployer, prod, web, omar, count, django_assert_max_num_queries):
    for i in range(count):
        deployment = ask(deployer, prod, f"1.{i}.0")
        approve_deployment(omar, deployment.pk)  # approvals to prefetch, too
    client = login(approver)
    # session, user, profile, roles, environments with approver groups, the live version's three
    # aggregates (deployments: also the SQL pagination's count; environment requests; restores), one
    # page of rows, their approvals and approvers, the environment requests with their approvals,
    # and the production restores waiting: whatever the number waiting.
    with django_assert_max_num_queries(14):
        response = client.get("/approvals/")
    assert len(re.findall(r'href="/deployments/\d+/"', text(response))) == count


def test_the_inbox_is_paginated_in_sql_and_counts_every_waiting_deployment(login, approver, deployer, prod, web,
                                                                          settings):
    settings.GANTRY_PAGE_SIZE = 2
    waiting = [ask(deployer, prod, f"1.{i}.0") for i in range(5)]
    client = login(approver)
    first = text(client.get("/approvals/"))
    assert '<span class="count">5</span>' in first
    assert re.findall(r'href="/deployments/(\d+)/"', first) == [str(d.pk) for d in waiting[:2]]
    last = text(client.get("/approvals/?page=3"))
    assert re.findall(r'href="/deployments/(\d+)/"', last) == [str(waiting[4].pk)]


def test_approver_groups_narrow_the_inbox_and_the_badge(login, make_user, make_env, deployer, web):
    prod = make_env("prod", tier="production", required_approvals=1, approver_groups=["release-managers"])
    deployment = ask(deployer, prod)
    outsider = login(make_user("otto", "approver"))
    assert f'href="/deployments/{deployment.pk}/"' not in text(outsider.get("/approvals/"))
    assert 'width="0"' in text(outsider.get("/approvals/badge.svg"))
    member = make_user("ines", "approver")
    member.groups.add(Group.objects.create(name="release-managers"))
    client = login(member)
    assert f'href="/deployments/{deployment.pk}/"' in text(client.get("/approvals/"))
    assert re.search(r'aria-label="1 waiting"', text(client.get("/approvals/badge.svg")))

