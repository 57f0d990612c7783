"""The approvals inbox and the approval page with 1,000 pending deployments of realistic manifests.

Seeds 10 production environments (2 approvals, no self-approval, a night window) and 1,000
deployments waiting for approval, 100 per environment, each with its rendered manifests: the demo
`api` service's Deployment + Service + ConfigMap plus an HPA and an Ingress (five kinds, checked
once against the Kubernetes schemas). 30% already carry one approval by another approver and 10%
one by the approver measured, so the inbox shows 900. Then, as that approver (global approver
role), GETs the inbox and the approval page of three deployments (no approval yet, one approval
by someone else, already approved by them), and prints p50/p95/max latency and queries per
request. The pages (`/approvals/`, `/deployments/<id>/`, and the navigation badge every page
loads, `/approvals/badge.svg`) are measured when they exist, the API equivalents
(`/api/v1/approvals`, `/api/v1/deployments/<id>`) always.

Queries per request are also printed at 10 pending deployments, and once more with approver
groups set on the environments (a rule that reads the approver's groups): a count that grows with
the number of pending deployments is one query per row (N+1).

    .venv/bin/python bench/bench_approvals.py [--requests 200] [--budget 55]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets Django up)
from common import step  # noqa: E402

ENVIRONMENTS = 10
SERVICES = 20
APPROVER_GROUP = "release-managers"

EXTRA_KINDS = """\
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: ${service}
  labels:
    app: ${service}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: ${service}
  minReplicas: ${replicas}
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${service}
  labels:
    app: ${service}
  annotations:
    nginx.ingress.kubernetes.io/proxy-body-size: 8m
    nginx.ingress.kubernetes.io/proxy-read-timeout: "60"
spec:
  ingressClassName: nginx
  tls:
    - hosts:
        - ${service}.${environment}.example.com
      secretName: ${service}-tls
  rules:
    - host: ${service}.${environment}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: ${service}
                port:
                  number: 80
"""


def realistic_manifest():
    """The demo `api` manifest (Deployment, Service, ConfigMap) plus an HPA and an Ingress."""
    from portal.demo_data import SERVICES as DEMO_SERVICES

    api = next(s for s in DEMO_SERVICES if s["name"] == "api")["manifest"]
    return api.rstrip("\n") + "\n" + EXTRA_KINDS


def check_manifest(text):
    """Kinds in the template, and whether it passes Gantry's own validation (schemas, resources)."""
    import yaml

    from deployments.manifests import ManifestError, validate_manifest

    kinds = [doc["kind"] for doc in yaml.safe_load_all(text.replace("${", "x{")) if doc]
    try:
        validate_manifest(text)
        verdict = "valid (kubernetes-validate and Gantry's policy)"
    except ManifestError as exc:
        verdict = f"INVALID: {exc}"
    return kinds, verdict


def seed(pending):
    """Ten production environments and `pending` deployments waiting for approval."""
    from deployments.models import Approval, Deployment
    from deployments.rendering import manifest_hash, render_text
    from portal.audit.models import AuditEvent

    common.reset()
    manifest = realistic_manifest()
    with step(f"seeded {pending} pending deployments"), common.transaction.atomic():
        cluster = common.make_cluster("prod-cluster", sandbox=False)
        envs = common.make_environments([{"slug": f"prod-{region}-{k}", "tier": "production", "replicas": 3}
                                         for region in ("eu", "us") for k in range(1, ENVIRONMENTS // 2 + 1)],
                                        cluster)
        users = common.make_users([("ada", ["admin"]), ("dana", ["deployer"]), ("rita", ["approver"]),
                                   ("omar", ["approver"]), ("audrey", ["viewer"])])
        services = common.make_services([f"svc-{i:02d}" for i in range(SERVICES)], [manifest])
        releases = common.make_releases(services, 2, created_by=users["dana"])
        latest = {r.service_id: r for r in releases if r.version == "1.1.0"}
        deployments = []
        for i in range(pending):
            env, svc = envs[i % len(envs)], services[i % len(services)]
            release = latest[svc.pk]
            deployments.append(Deployment(
                release=release, environment=env, service=svc, kind="deploy", state="pending_approval",
                requested_by=users["dana"], image=release.image, manifest_hash=manifest_hash(svc, release, env),
                rendered_manifest=render_text(svc, release, env),
                reason=f"Roll out {svc.name} 1.1.0 (change ticket CHG-{10000 + i})"))
        deployments = Deployment.objects.bulk_create(deployments, batch_size=500)
        with common.connection.cursor() as cursor:  # auto_now_add gave them all "now": spread them out
            cursor.execute(f"UPDATE {Deployment._meta.db_table} "
                           "SET requested_at = requested_at - interval '1 hour' + id * interval '3 seconds'")
        approvals = []
        for i, d in enumerate(deployments):
            by = users["omar"] if i % 10 in (0, 1, 2) else users["rita"] if i % 10 == 3 else None
            if by is not None:
                approvals.append(Approval(deployment=d, user=by, decision="approve", image=d.image,
                                          manifest_hash=d.manifest_hash, comment="Looks good; diff reviewed."))
        Approval.objects.bulk_create(approvals, batch_size=1000)
        events = []
        for d in deployments:
            events.append({"actor": "dana", "actor_id": users["dana"].pk, "action": "deployment.request",
                           "target_type": "deployments.deployment", "target_id": d.pk,
                           "target_repr": f"#{d.pk} {d.service.name} 1.1.0 to {d.environment.slug}",
                           "environment": d.environment.slug, "ip": "10.0.0.9",
                           "detail": {"release": f"{d.service.name} 1.1.0", "image": d.image, "start_now": False}})
        for a in approvals:
            d = a.deployment
            events.append({"actor": a.user.username, "actor_id": a.user.pk, "action": "deployment.approve",
                           "target_type": "deployments.deployment", "target_id": d.pk,
                           "target_repr": f"#{d.pk} {d.service.name} 1.1.0 to {d.environment.slug}",
                           "environment": d.environment.slug, "ip": "10.0.0.12",
                           "detail": {"image": d.image, "manifest_hash": d.manifest_hash}})
        common.bulk_audit(events)
    verdict = common.verify_audit_chain()
    common.analyze()
    by_role = {"no approval yet": deployments[5], "1 approval by omar": deployments[1],
               "rita already approved": deployments[3]}
    text = deployments[0].rendered_manifest
    sizes = {"production environments": len(envs), "services": len(services), "pending deployments": len(deployments),
             "approvals": len(approvals), "audit events": AuditEvent.objects.count()}
    return users, envs, by_role, sizes, verdict, text


def urls(by_role):
    """[(label, url)] to measure, fast ones first: the pages when they exist, the API always."""
    plan = []
    for label, deployment in by_role.items():
        page = f"/deployments/{deployment.pk}/"
        if common.url_exists(page):
            plan.append((f"approval page ({label})", page))
        plan.append((f"deployment API ({label})", f"/api/v1/deployments/{deployment.pk}"))
    if common.url_exists("/approvals/"):
        plan.append(("inbox page", "/approvals/"))
    for badge in ("/approvals/badge.svg", "/approvals/count/"):  # the navigation badge, loaded by every page
        if common.url_exists(badge):
            plan.append(("inbox count (nav badge)", badge))
            break
    plan.append(("inbox API", "/api/v1/approvals"))
    return plan


def with_approver_groups(users, envs):
    """Turn on the approver-groups rule on every environment, with the approver in the group."""
    from django.contrib.auth.models import Group

    from environments.models import Environment

    group, _ = Group.objects.get_or_create(name=APPROVER_GROUP)
    users["rita"].groups.add(group)
    Environment.objects.filter(pk__in=[e.pk for e in envs]).update(approver_groups=[APPROVER_GROUP])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per URL (default 200)")
    parser.add_argument("--budget", type=float, default=55, help="seconds for the timed requests (default 55)")
    parser.add_argument("--pending", type=int, default=1000)
    args = parser.parse_args()

    print(f"bench_approvals on {common.machine()}")
    kinds, manifest_verdict = check_manifest(realistic_manifest())

    # Queries per request with 10 pending deployments (plain, then with approver groups).
    small_pending = ENVIRONMENTS
    users, envs, by_role, _, _, _ = seed(small_pending)
    small = {label: common.count_queries(common.client_for(users["rita"]), url)[1] for label, url in urls(by_role)}
    with_approver_groups(users, envs)
    small_groups = {label: common.count_queries(common.client_for(users["rita"]), url)[1]
                    for label, url in urls(by_role) if label.startswith("inbox")}

    users, envs, by_role, sizes, verdict, rendered = seed(args.pending)
    print(f"\nManifest template: {', '.join(kinds)} — {manifest_verdict}")
    print(f"Rendered manifests: {len(rendered):,} bytes, {rendered.count(chr(10))} lines each")
    common.print_sizes(sizes, "Data size")
    print(f"Audit chain: {verdict}")
    print("Measured as 'rita' (global approver). Inbox shows deployments she may still decide on: "
          f"{sizes['pending deployments'] - sum(1 for i in range(args.pending) if i % 10 == 3):,}.")
    missing = [p for p in ("/approvals/", f"/deployments/{by_role['no approval yet'].pk}/") if not common.url_exists(p)]
    if missing:
        print(f"Pages not routed yet (measured the API instead): {', '.join(missing)}")

    plan = urls(by_role)
    rows, comparison, suspects = [], [], []
    client = common.client_for(users["rita"])
    budget = common.Budget(args.budget, len(plan))
    for label, url in plan:
        result = common.measure(client, url, args.requests, budget_s=budget.next_row())
        rows.append(common.latency_row("rita", result) | {"what": label})
        grows = result["queries"] != small[label]
        comparison.append({"what": label, "small": small[label], "full": result["queries"],
                           "verdict": "GROWS (N+1)" if grows else "same"})
        if grows or result["repeats"]:
            suspects.append((label, url, result["repeats"]))
    elapsed = budget.spent

    # The same inbox with approver groups on: a variant, so only a few requests.
    with_approver_groups(users, envs)
    for label, url in plan:
        if not label.startswith("inbox"):
            continue
        result = common.measure(client, url, 2, warmup=0)
        label = f"{label}, approver groups on"
        rows.append(common.latency_row("rita", result) | {"what": label})
        small_count = small_groups[label.split(",")[0]]
        grows = result["queries"] != small_count
        comparison.append({"what": label, "small": small_count, "full": result["queries"],
                           "verdict": "GROWS (N+1)" if grows else "same"})
        if grows or result["repeats"]:
            suspects.append((label, url, result["repeats"]))

    columns = [("what", "what")] + [c for c in common.LATENCY_COLUMNS if c[0] != "who"]
    common.print_table(rows, columns, f"Latency as approver ({elapsed:.0f} s of timed requests; up to "
                                      f"{args.requests} per row, fewer when a row's share of the {args.budget:.0f} s "
                                      "budget ran out; 2 per 'approver groups on' row)")
    common.print_table(comparison, [("what", "what"), ("small", f"queries @{small_pending} pending"),
                                    ("full", f"queries @{args.pending} pending"), ("verdict", "")],
                       "Queries per request: small vs full size")
    common.print_suspects(suspects)


if __name__ == "__main__":
    main()
