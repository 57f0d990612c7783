"""List pages under load: the dashboard, environments, the audit log, jobs and the environments API.

Seeds 100 environments, a catalog of 50 services and one succeeded deployment of every service
in every environment (5,000, each with its job, health row and audit trail: about 20,000 audit
events, chained and verified), then GETs each page up to 300 times as an admin, an auditor
(global viewer) and a viewer scoped to 10 environments, and prints p50/p95/max latency and
queries per request. The timed requests share a time budget (--budget): a page gets what is
left over the pages left, at least 10 requests. Neighbouring list pages are measured too (an
environment's live view of its 50 services, its history, deployments, releases, services,
/api/v1/deployments) when they are routed.

Before that it seeds a small portal (5 environments, 5 services) and prints the queries per
request of the same pages side by side: a page whose count grows with the rows issues one query
per row (N+1); the query shapes that repeat, and the code that runs them, are printed.

    .venv/bin/python bench/bench_pages.py [--requests 300] [--budget 65]
"""
import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets Django up)
from common import step  # noqa: E402

TIER_PLAN = (("production", 0.10), ("staging", 0.20), ("development", 0.40), ("preview", 0.30))
SERVICE_WORDS = ["web", "api", "worker", "billing", "search", "checkout", "cart", "catalog", "auth", "accounts",
                 "inventory", "pricing", "shipping", "orders", "payments", "notifications", "email", "sms",
                 "reports", "analytics", "ingest", "export", "media", "thumbnails", "recommendations", "reviews",
                 "loyalty", "coupons", "gateway", "graphql", "admin", "cms", "feeds", "scheduler", "ledger",
                 "fraud", "kyc", "support", "chat", "presence", "geo", "maps", "tax", "invoices", "refunds",
                 "webhooks", "audit-sink", "metrics-proxy", "feature-flags", "sessions"]
SCOPED_ENVIRONMENTS = 10


def environment_specs(count):
    specs = []
    for tier, share in TIER_PLAN:
        for k in range(max(1, round(count * share))):
            if len(specs) < count:
                specs.append({"slug": f"{tier[:4]}-{k + 1:03d}", "tier": tier})
    return specs


def seed(n_envs, n_services):
    """The portal at one size. Returns (users, environments, sizes)."""
    from django.db.models import F

    from deployments.models import Approval, Deployment
    from deployments.monitoring.models import CellHealth
    from deployments.rendering import manifest_hash, render_text
    from environments.models import Environment
    from portal.audit.models import AuditEvent
    from portal.demo_data import SERVICES as DEMO_SERVICES
    from portal.jobs.models import Job, JobLogLine

    common.reset()
    now = common.timezone.now()
    with step(f"seeded {n_envs} environments x {n_services} services"), common.transaction.atomic():
        cluster = common.make_cluster("sandbox")
        owners = common.make_users([(f"dev{i:02d}", ["deployer"]) for i in range(20)])
        envs = common.make_environments(environment_specs(n_envs), cluster)
        for i, env in enumerate(envs):
            if env.tier in ("development", "preview"):
                env.owner = owners[f"dev{i % 20:02d}"]
        Environment.objects.bulk_update(envs, ["owner"])
        envs = list(Environment.objects.select_related("cluster", "owner").order_by("pk"))
        users = common.make_users([
            ("ada", ["admin"]), ("audrey", ["viewer"]), ("rita", ["approver"]), ("omar", ["approver"]),
            ("dana", ["deployer"]),
            ("vic", [("viewer", env) for env in envs[:: max(1, len(envs) // SCOPED_ENVIRONMENTS)][:SCOPED_ENVIRONMENTS]]),
        ])
        services = common.make_services(SERVICE_WORDS[:n_services], [s["manifest"] for s in DEMO_SERVICES])
        releases = common.make_releases(services, 3, created_by=users["dana"])
        latest = {r.service_id: r for r in releases if r.version == "1.2.0"}

        deployments, jobs, health = [], [], []
        for e, env in enumerate(envs):
            for s, svc in enumerate(services):
                release = latest[svc.pk]
                finished = now - timedelta(minutes=(e * n_services + s))
                job = Job(kind="deployment.apply", queue="deploy", state="succeeded",
                          target_type="deployments.deployment", target_repr=f"{svc.name} 1.2.0 to {env.slug}",
                          environment=env, requested_by=users["dana"], attempts=1, worker="bench-worker",
                          started_at=finished - timedelta(seconds=40), finished_at=finished,
                          heartbeat_at=finished)
                jobs.append(job)
                deployments.append(Deployment(
                    release=release, environment=env, service=svc, kind="deploy", state="succeeded",
                    requested_by=users["dana"], image=release.image, manifest_hash=manifest_hash(svc, release, env),
                    rendered_manifest=render_text(svc, release, env),
                    color="blue" if svc.strategy == "blue-green" else "", job_id=job.pk,
                    started_at=finished - timedelta(seconds=40), finished_at=finished))
                health.append(CellHealth(environment=env, service=svc, status="healthy" if (e + s) % 17 else
                                         "degraded", ready_replicas=env.replicas, desired_replicas=env.replicas,
                                         color="blue" if svc.strategy == "blue-green" else "",
                                         checked_at=now, since=now, changed_at=now))
        # Deployments point at their jobs by a pre-generated uuid: the FK is checked at commit.
        deployments = Deployment.objects.bulk_create(deployments, batch_size=1000)
        for job, deployment in zip(jobs, deployments, strict=False):
            job.target_id, job.params = str(deployment.pk), {"deployment": deployment.pk}
        Job.objects.bulk_create(jobs, batch_size=1000)
        JobLogLine.objects.bulk_create([JobLogLine(job=job, level="info", message=message) for job in jobs
                                        for message in ("applying 2 objects", "rollout complete")], batch_size=5000)
        CellHealth.objects.bulk_create(health, batch_size=2000)
        # auto_now_add fields take "now" on insert: spread them in time like a real history.
        Deployment.objects.update(requested_at=F("started_at") - timedelta(minutes=5))
        Job.objects.update(created_at=F("started_at") - timedelta(seconds=2))
        approvals = [Approval(deployment=d, user=u, decision="approve", image=d.image, manifest_hash=d.manifest_hash)
                     for d in deployments if d.environment.required_approvals
                     for u in (users["rita"], users["omar"])[: d.environment.required_approvals]]
        Approval.objects.bulk_create(approvals, batch_size=2000)

        events = audit_history(users, envs, services, releases, deployments, now)
        print(f"bench: {events:,} audit events written in bulk (hash chain computed)", file=sys.stderr)
    with step("verified the audit chain"):
        verdict = common.verify_audit_chain()
    sizes = {"environments": len(envs), "services": len(services), "releases": len(releases),
             "deployments": len(deployments), "approvals": len(approvals), "jobs": len(jobs),
             "job log lines": 2 * len(jobs), "health rows": len(health),
             "audit events": AuditEvent.objects.count()}
    return users, envs, sizes, verdict


def audit_history(users, envs, services, releases, deployments, now):
    """environment.create, release.create and each deployment's request/approved/running/succeeded."""
    start = now - timedelta(days=30)
    events = []
    for env in envs:
        events.append({"actor": "ada", "actor_id": users["ada"].pk, "action": "environment.create",
                       "target_type": "environments.environment", "target_id": env.pk, "target_repr": env.slug,
                       "environment": env.slug, "ip": "10.0.0.5",
                       "changes": {"tier": [None, env.tier], "namespace": [None, env.namespace]}})
    for release in releases:
        events.append({"actor": "dana", "actor_id": users["dana"].pk, "action": "release.create",
                       "target_type": "deployments.release", "target_id": release.pk,
                       "target_repr": f"{release.service.name} {release.version}", "ip": "10.0.0.9",
                       "changes": {"service": [None, release.service.name], "version": [None, release.version],
                                   "image": [None, release.image]}})
    for d in deployments:
        common_fields = {"target_type": "deployments.deployment", "target_id": d.pk,
                         "target_repr": f"#{d.pk} {d.service.name} {d.release.version} to {d.environment.slug}",
                         "environment": d.environment.slug}
        events.append(common_fields | {"actor": "dana", "actor_id": users["dana"].pk, "action": "deployment.request",
                                       "ip": "10.0.0.9", "detail": {"release": f"{d.service.name} 1.2.0",
                                                                    "image": d.image, "start_now": False}})
        events.append(common_fields | {"actor": "gantry", "action": "deployment.approved",
                                       "changes": {"state": ["pending_approval", "approved"]}})
        events.append(common_fields | {"actor": "gantry-worker", "action": "deployment.running",
                                       "changes": {"state": ["queued", "running"]}})
        events.append(common_fields | {"actor": "gantry-worker", "action": "deployment.succeeded",
                                       "changes": {"state": ["running", "succeeded"]}})
    step_s = (now - start).total_seconds() / max(1, len(events))
    for i, event in enumerate(events):
        event["at"] = start + timedelta(seconds=i * step_s)
    return common.bulk_audit(events)


def page_urls(envs):
    production = next((e for e in envs if e.tier == "production"), envs[0])
    urls = [
        ("/", ("ada", "audrey", "vic")),
        ("/environments/", ("ada", "vic")),
        ("/audit/", ("ada", "audrey")),
        (f"/audit/?environment={production.slug}&action=deployment.", ("ada", "audrey")),
        ("/audit/?page=200", ("audrey",)),
        ("/jobs/", ("ada", "vic")),
        ("/api/v1/environments", ("ada", "vic")),
        # Neighbours that list rows too (one user each, to keep the run short).
        ("/services/", ("ada",)),
        (f"/environments/{production.slug}/", ("ada",)),
        (f"/environments/{production.slug}/live/", ("ada", "vic")),  # the 50 services of one environment
        (f"/environments/{production.slug}/history/", ("ada",)),
        ("/deployments/", ("ada", "vic")),
        ("/releases/", ("ada",)),
        ("/api/v1/deployments?limit=100", ("ada",)),
        (f"/api/v1/environments/{production.slug}/health", ("ada",)),
    ]
    return [(url, who) for url, who in urls if common.url_exists(url)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per page and user (default 300)")
    parser.add_argument("--budget", type=float, default=65, help="seconds for the timed requests (default 65)")
    parser.add_argument("--environments", type=int, default=100)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()

    print(f"bench_pages on {common.machine()}")

    # 1. Queries per request at a small size ...
    users, envs, small_sizes, _ = seed(5, 5)
    small = {}
    for url, who in page_urls(envs):
        for name in who:
            small[(name, url)] = common.count_queries(common.client_for(users[name]), url)

    # 2. ... and at the full size, with timings.
    users, envs, sizes, verdict = seed(args.environments, args.services)
    common.print_sizes(small_sizes, "Small size")
    common.print_sizes(sizes, "Full size")
    print(f"Audit chain: {verdict}")
    print("Scoped viewer 'vic' sees", min(SCOPED_ENVIRONMENTS, len(envs)), "environments; 'audrey' is a global viewer "
          "(auditor); 'ada' a global admin.")

    plan = [(url, name) for url, who in page_urls(envs) for name in who]
    budget = common.Budget(args.budget, len(plan))
    rows, comparison, suspects = [], [], []
    for url, name in plan:
        result = common.measure(common.client_for(users[name]), url, args.requests, budget_s=budget.next_row())
        rows.append(common.latency_row(name, result))
        key = (name, url)
        s_status, s_queries, _ = small[key]
        grows = result["queries"] != s_queries
        comparison.append({"who": name, "url": key[1], "small": s_queries, "full": result["queries"],
                           "verdict": "GROWS (N+1?)" if grows else "same"})
        if grows or result["repeats"]:
            suspects.append((name, url, result["repeats"]))
    elapsed = budget.spent

    common.print_table(rows, common.LATENCY_COLUMNS,
                       f"Latency at full size ({elapsed:.0f} s of timed requests; up to {args.requests} per row, "
                       f"fewer when a row's share of the {args.budget:.0f} s budget ran out)")
    common.print_table(comparison, [("who", "as"), ("url", "url"), ("small", "queries @5 envs"),
                                    ("full", f"queries @{len(envs)} envs"), ("verdict", "")],
                       "Queries per request: small vs full size")
    common.print_suspects(suspects)


if __name__ == "__main__":
    main()
