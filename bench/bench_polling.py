"""Polling cost per open tab: what each live page (portal/live.py) costs the server while it is open.

Every live fragment of a page is polled once a second (htmx, `every 1s`). While nothing changes the
server answers 304 from its version query; when something changed it renders the fragment (200).
For each live page this benchmark opens the page as its user, finds the fragments it polls (the
elements with `hx-trigger="... every 1s"`, also inside the parts it loads once on load: the
navigation's approvals badge is one on every page),
then times, per fragment, polls answered 304 (the client holds the version) and polls answered 200
(it holds none, so the fragment is rendered as after a change), and prints:

- per fragment: wall and CPU ms (this process: Django, the driver; PostgreSQL's own time is only in
  the wall time) at p50 for a 304 and for a 200, queries per poll, bytes of a 200;
- per page: the requests per second one open tab sends (one per fragment), and the CPU ms per second
  it costs when nothing changes (all 304) and when everything changes every second (all 200): how
  many idle tabs one core serves is 1000 / the first.

The data is bench_pages.py's (100 environments x 50 services, 5,000 deployments and jobs), plus
20 production deployments waiting for approval and a running job with 200 log lines.

    .venv/bin/python bench/bench_polling.py [--requests 200] [--budget 60] [--environments 100] [--services 50]
"""
import argparse
import html
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets Django up)
from bench_pages import seed  # noqa: E402
from common import step  # noqa: E402

POLLED = re.compile(r'<[a-z]+\b[^>]*\bhx-trigger="(?:load, )?every 1s"[^>]*>')
LOADED = re.compile(r'<[a-z]+\b[^>]*\bhx-trigger="load"[^>]*>')  # fetched once on load; may poll then
ATTRIBUTE = re.compile(r'\b(id|hx-get|data-live-version)="([^"]*)"')
WAITING = 20
LOG_LINES = 200


def polled_fragments(body):
    """[(fragment id, poll URL, version or None)] of the live fragments in a page's HTML."""
    found = []
    for tag in POLLED.findall(body):
        attributes = dict(ATTRIBUTE.findall(tag))
        if "id" in attributes and "hx-get" in attributes:
            found.append((attributes["id"], html.unescape(attributes["hx-get"]), attributes.get("data-live-version")))
    return found


def page_fragments(client, body):
    """The polled fragments of a page, including those inside the parts it loads once on load (the
    environment page's live view arrives that way and then polls)."""
    found = polled_fragments(body)
    for tag in LOADED.findall(body):
        attributes = dict(ATTRIBUTE.findall(tag))
        if "id" in attributes and "hx-get" in attributes:
            loaded = client.get(html.unescape(attributes["hx-get"]), **poll_headers(attributes["id"]))
            found.extend(polled_fragments(loaded.content.decode()))
    return found


def add_live_work(users, envs):
    """Deployments waiting for approval in production and a running job with a long log."""
    from deployments.models import Deployment, Release
    from deployments.rendering import manifest_hash, render_text
    from portal.jobs.models import Job, JobLogLine

    production = [env for env in envs if env.tier == "production"]
    releases = list(Release.objects.select_related("service").filter(version="1.1.0")[:WAITING])
    waiting = []
    for i, release in enumerate(releases):
        env = production[i % len(production)]
        waiting.append(Deployment(
            release=release, environment=env, service=release.service, kind="deploy", state="pending_approval",
            requested_by=users["dana"], image=release.image, manifest_hash=manifest_hash(release.service, release, env),
            rendered_manifest=render_text(release.service, release, env)))
    waiting = Deployment.objects.bulk_create(waiting)
    now = common.timezone.now()
    job = Job.objects.create(kind="deployment.apply", queue="deploy", state="running", environment=production[0],
                             requested_by=users["dana"], attempts=1, worker="bench-worker", started_at=now,
                             heartbeat_at=now, target_type="deployments.deployment", target_repr="bench rollout")
    JobLogLine.objects.bulk_create([JobLogLine(job=job, message=f"rollout step {i}") for i in range(LOG_LINES)])
    return waiting[0], job, production[0]


def live_pages(users, first_waiting, job, production):
    service = first_waiting.service.name
    return [
        ("/", "ada"),
        ("/environments/", "ada"),
        (f"/environments/{production.slug}/", "ada"),
        ("/deployments/", "ada"),
        (f"/deployments/{first_waiting.pk}/", "rita"),
        ("/approvals/", "rita"),
        ("/jobs/", "ada"),
        (f"/jobs/{job.pk}/", "ada"),
        (f"/environments/{production.slug}/history/", "ada"),
        ("/releases/", "ada"),
        ("/clusters/", "ada"),
        ("/compliance/period/", "ada"),
        (f"/environments/{production.slug}/backups/", "ada"),
        (f"/environments/{production.slug}/services/{service}/health/", "ada"),
    ]


def poll_headers(fragment, version=None):
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": fragment, "HTTP_X_GANTRY_LIVE": "1"}
    if version:
        headers["HTTP_IF_NONE_MATCH"] = f'"{version}"'
    return headers


def measure_fragment(client, fragment, url, n, budget_s):
    """(304 result, 200 result) of one fragment's polls; None for a 304 the fragment never answers."""
    first = client.get(url, **poll_headers(fragment))
    etag = first.get("ETag", "").strip('"')
    rendered = common.measure(client, url, n, budget_s=budget_s / 2, headers=poll_headers(fragment))
    unchanged = None
    if etag:
        unchanged = common.measure(client, url, n, budget_s=budget_s / 2, headers=poll_headers(fragment, etag))
        if unchanged["status"] != 304:
            unchanged = dict(unchanged, note=f"answered {unchanged['status']}, not 304")
    return unchanged, rendered


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="polls per fragment and answer (default 200)")
    parser.add_argument("--budget", type=float, default=60, help="seconds for the timed polls (default 60)")
    parser.add_argument("--environments", type=int, default=100)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()

    print(f"bench_polling on {common.machine()}")
    users, envs, sizes, _ = seed(args.environments, args.services)
    with step("added deployments waiting for approval and a running job"), common.transaction.atomic():
        first_waiting, job, production = add_live_work(users, envs)
    sizes.update({"waiting for approval": WAITING, "running job's log lines": LOG_LINES})
    common.print_sizes(sizes, "Data size")

    plan = []
    for path, who in live_pages(users, first_waiting, job, production):
        client = common.client_for(users[who])
        page = client.get(path)
        if page.status_code != 200:
            print(f"  {path} as {who}: {page.status_code}, skipped")
            continue
        plan.append((path, who, client, page_fragments(client, page.content.decode())))
    budget = common.Budget(args.budget, sum(len(fragments) for *_, fragments in plan))

    rows, pages = [], []
    for path, who, client, fragments in plan:
        idle = busy = 0.0
        for fragment, url, _ in fragments:
            unchanged, rendered = measure_fragment(client, fragment, url, args.requests, budget.next_row())
            rows.append({
                "page": path, "fragment": fragment, "who": who,
                "w304": unchanged["p50"] if unchanged else None, "c304": unchanged["cpu_p50"] if unchanged else None,
                "q304": unchanged["queries"] if unchanged else None,
                "w200": rendered["p50"], "c200": rendered["cpu_p50"], "q200": rendered["queries"],
                "kb": rendered["bytes"] / 1024, "n": rendered["n"] + (unchanged["n"] if unchanged else 0),
                "note": (unchanged or {}).get("note", "" if unchanged else "no ETag: always rendered"),
            })
            idle += unchanged["cpu_p50"] if unchanged else rendered["cpu_p50"]
            busy += rendered["cpu_p50"]
        pages.append({"page": path, "who": who, "rps": len(fragments), "idle": idle, "busy": busy,
                      "tabs": 1000 / idle if idle else None,
                      "fragments": ", ".join(fragment for fragment, *_ in fragments)})

    common.print_table(rows, [
        ("page", "page"), ("fragment", "fragment"), ("who", "as"), ("n", "polls"),
        ("w304", "304 ms", ".1f"), ("c304", "304 CPU ms", ".1f"), ("q304", "304 queries"),
        ("w200", "200 ms", ".1f"), ("c200", "200 CPU ms", ".1f"), ("q200", "200 queries"), ("kb", "200 KB", ".1f"),
        ("note", ""),
    ], f"Per poll, p50 ({budget.spent:.0f} s of timed polls)")
    common.print_table(pages, [
        ("page", "page"), ("who", "as"), ("rps", "requests/s per tab"), ("idle", "CPU ms/s idle (304s)", ".1f"),
        ("busy", "CPU ms/s all changed (200s)", ".1f"), ("tabs", "idle tabs per core", ".0f"),
        ("fragments", "polled fragments"),
    ], "Per open tab (one poll per fragment per second)")


if __name__ == "__main__":
    main()
