"""Audit events as people read them: "deployment #6: web 1.1.0 → production", with a link.

Targets are stored as (type, id, repr at the time); this turns them into words and a URL without a
query per event, so a page of fifty events costs the same as one.
"""
import re

from django.urls import NoReverseMatch, reverse

from portal.jobs.kinds import kind_title

# Actors that are Gantry itself rather than a person.
SYSTEM_ACTORS = ("system", "gantry", "gantry-worker", "gantry-scheduler")

_DEPLOYMENT_REPR = re.compile(r"^#(?P<id>\d+) (?P<release>.+) to (?P<env>[\w.-]+)$")


def _deployment(event):
    match = _DEPLOYMENT_REPR.match(event.target_repr or "")
    if match:
        return f"deployment #{match['id']}: {match['release']} → {match['env']}"
    return f"deployment #{event.target_id}"


def _job(event):
    kind = (event.detail or {}).get("kind") if isinstance(event.detail, dict) else None
    words = event.target_repr or ""
    if kind and words.startswith(kind):
        words = words[len(kind):].strip()
    label = f"job {kind_title(kind)}" if kind else "job"
    return f"{label}: {words}" if words else label


# type: (words for the target, URL name, how the URL's argument comes from the event)
TARGETS = {
    "deployments.deployment": (_deployment, "deployment_detail", lambda e: [int(e.target_id)]),
    "deployments.release": (lambda e: f"release {e.target_repr}", "release_list", None),
    "deployments.service": (lambda e: f"service {e.target_repr}", "service_detail", lambda e: [e.target_repr]),
    "environments.environment": (lambda e: f"environment {e.target_repr}", "environment_detail",
                                 lambda e: [e.target_repr]),
    "environments.cluster": (lambda e: f"cluster {e.target_repr}", "cluster_list", None),
    "jobs.job": (_job, "job_detail", lambda e: [e.target_id]),
    "auth.user": (lambda e: f"user {e.target_repr}", "user_list", None),
    "accounts.apitoken": (lambda e: f"token {e.target_repr}", None, None),
}


def target_words(event):
    if not event.target_type:
        return ""
    known = TARGETS.get(event.target_type)
    if known is None:
        name = event.target_type.split(".")[-1]
        return f"{name} {event.target_repr or event.target_id}"
    return known[0](event)


def target_url(event):
    known = TARGETS.get(event.target_type)
    if known is None or known[1] is None:
        return ""
    try:
        return reverse(known[1], args=known[2](event) if known[2] else None)
    except (NoReverseMatch, ValueError, TypeError):
        return ""


def annotate(events):
    """Give each event `.target_words` and `.target_url` (no queries)."""
    for event in events:
        event.target_words = target_words(event)
        event.target_url = target_url(event)
        event.is_system = event.actor_id is None and event.actor in SYSTEM_ACTORS
    return events
