"""Self-service environments at scale: the TTL reaper, the environments page and the create form.

Seeds 1,000 preview environments made from the `preview` template (100 of them expired), then:

1. runs the reaper (`teardown.expire_environments`) once and prints its time and queries, and
   the queries per expired environment (each teardown is a transaction with its audit events and
   a queued job; the rest must cost nothing per environment);
2. GETs the environments page, the create form and its as-you-type check as a deployer, up to
   --requests times each, and prints p50/p95/max and queries per request, side by side with the
   same pages over 10 environments: the query counts must be the same at both sizes.

    .venv/bin/python bench/bench_environments.py [--requests 100] [--budget 30]
"""
import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets Django up)
from common import step  # noqa: E402


def seed(count, expired):
    from environments.models import Environment, EnvironmentTemplate
    from environments.template_defaults import seed_templates

    common.reset()
    seed_templates(EnvironmentTemplate)
    cluster = common.make_cluster()
    users = common.make_users([("dee", ["deployer"]), ("ada", ["admin"])])
    with step(f"seeded {count} environments ({expired} expired)"):
        template = EnvironmentTemplate.objects.get(name="preview")
        from environments.guardrails import resolve

        guard = resolve(template, {})
        specs = [{"slug": f"pr-{i:04d}", "tier": "preview", "guardrails": guard, "owner": users["dee"]}
                 for i in range(count)]
        envs = common.make_environments(specs, cluster)
        now = common.timezone.now()
        ids = [e.pk for e in envs[:expired]]
        Environment.objects.filter(pk__in=ids).update(expires_at=now - timedelta(hours=1))
    return users


def bench_reaper(count, expired):
    from environments.models import Environment
    from environments.teardown import expire_environments

    seed(count, expired)
    with common.QueryLog() as queries:
        started = time.perf_counter()
        reaped = expire_environments()
        elapsed = time.perf_counter() - started
    untouched = Environment.objects.filter(status="ready").count()
    common.print_table([{"what": "reaper run", "environments": count, "expired": expired, "torn down": reaped,
                         "untouched": untouched, "seconds": elapsed, "queries": len(queries),
                         "queries/expired": len(queries) / max(reaped, 1)}],
                       [("what", "what"), ("environments", "environments"), ("expired", "expired"),
                        ("torn down", "torn down"), ("untouched", "untouched"), ("seconds", "seconds", ".2f"),
                        ("queries", "queries"), ("queries/expired", "queries per expired", ".1f")],
                       title="TTL reaper")


def bench_pages(count, requests, budget):
    rows = []
    for size in (10, count):
        users = seed(size, 0)
        client = common.client_for(users["dee"])
        for label, url in (("environments page", "/environments/"),
                           ("create form", "/environments/request/"),
                           ("as-you-type check", "/environments/request/check/?name=pr-new&template=preview&param_cpu=1")):
            result = common.measure(client, url, n=requests, budget_s=budget / 6)
            rows.append({"page": label, "environments": size, **result})
            if result["repeats"]:
                common.print_repeats(f"{label} at {size}", result["repeats"])
    common.print_table(rows, [("page", "page"), ("environments", "environments"), ("n", "n"), ("status", "status"),
                              ("p50", "p50 ms", ".1f"), ("p95", "p95 ms", ".1f"), ("max", "max ms", ".1f"),
                              ("queries", "queries")],
                       title="Pages (the queries must not grow with the environments)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=1000)
    parser.add_argument("--expired", type=int, default=100)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for all timed page requests")
    args = parser.parse_args(argv)
    print(f"bench_environments on {common.machine()}")
    bench_reaper(args.environments, args.expired)
    bench_pages(args.environments, args.requests, args.budget)


if __name__ == "__main__":
    main()
