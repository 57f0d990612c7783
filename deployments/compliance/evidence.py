"""Evidence packs: what happened to one deployment, told from the audit events that recorded it.

A pack is built only from recorded facts. Its statements are a pure function of the audit events
it carries (`derive_statements`), and the attachments (rendered manifests, the reviewed diff, the
job log) are checked against the SHA-256 values those events recorded when things happened. So
`evidence_verify` can rebuild every statement from the pack's own events offline, recompute each
event's hash, and notice an edited pack; and an edit of a rule after the deployment changes
nothing, since the rules come from the events of the request and of each decision.
"""
import hashlib
import json

from django.db.models import Q
from django.utils import timezone

from deployments.models import Deployment
from deployments.rendering import manifest_diff
from portal.audit import chain
from portal.audit.models import AuditEvent
from portal.audit.queries import event_as_dict
from portal.jobs.models import Job, JobLogLine

from .statements import DEPLOYMENT, derive_statements

FORMAT = "gantry-evidence/1"


# ---------------------------------------------------------------- hashing

def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def pack_sha256(pack):
    """SHA-256 over the pack's canonical JSON, its own `sha256` field left out."""
    body = {k: v for k, v in pack.items() if k != "sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def event_hash_ok(event):
    """Does the event's content still match its hash? (portal.audit's own hashing decides.)"""
    return chain.compute_hash(event) == event.get("hash")


# ---------------------------------------------------------------- collecting

def _subject(deployment):
    rollback_ids = list(Deployment.objects.filter(rollback_of=deployment).order_by("id").values_list("id", flat=True))
    ids = [deployment.pk] + rollback_ids
    job_ids = [str(pk) for pk in Job.objects.filter(target_type=DEPLOYMENT, target_id__in=[str(i) for i in ids])
               .order_by("created_at").values_list("pk", flat=True)]
    if deployment.job_id and str(deployment.job_id) not in job_ids:
        job_ids.append(str(deployment.job_id))
    return {"deployment": deployment.pk, "rollbacks": rollback_ids, "release": deployment.release_id,
            "jobs": job_ids}


def _events_for(subject):
    ids = [str(subject["deployment"])] + [str(i) for i in subject["rollbacks"]]
    query = (Q(target_type=DEPLOYMENT, target_id__in=ids)
             | Q(target_type="deployments.release", target_id=str(subject["release"]))
             | Q(target_type="jobs.job", target_id__in=subject["jobs"]))
    return [event_as_dict(e) for e in AuditEvent.objects.filter(query).order_by("seq")]


def chain_problems(events):
    """Check the pack's events against the chain in the database: each hash recomputes, and each is
    linked to the rows before and after it (an edited row whose hash was recomputed breaks the link
    to the next row; a removed row leaves a gap). Two queries whatever the pack's size."""
    problems = []
    seqs = {e["seq"] for e in events}
    around = set()
    for seq in seqs:
        around.update((seq - 1, seq + 1))
    neighbours = dict(AuditEvent.objects.filter(seq__in=around - seqs).values_list("seq", "hash"))
    prevs = dict(AuditEvent.objects.filter(seq__in=[s + 1 for s in seqs]).values_list("seq", "prev_hash"))
    by_seq = {e["seq"]: e for e in events}
    for event in events:
        seq = event["seq"]
        if not event_hash_ok(event):
            problems.append(f"audit event #{seq}: content does not match its hash (the row was changed)")
            continue
        before = by_seq[seq - 1]["hash"] if seq - 1 in by_seq else neighbours.get(seq - 1, chain.GENESIS if seq == 1 else None)
        if before is None:
            problems.append(f"audit event #{seq}: the event before it (#{seq - 1}) is missing from the chain")
        elif event["prev_hash"] != before:
            problems.append(f"audit event #{seq}: prev_hash does not match event #{seq - 1} (an event was changed or removed)")
        if seq + 1 in prevs and prevs[seq + 1] != event["hash"]:
            problems.append(f"audit event #{seq}: event #{seq + 1} does not point at it (this event was rewritten)")
    return problems


def _attachments(deployment, subject, events):
    """The rows the events vouch for: rendered manifests, the reviewed diff, the job logs."""
    deployments = {d.pk: d for d in Deployment.objects.select_related("release").filter(
        pk__in=[subject["deployment"]] + subject["rollbacks"])}
    manifests = {str(pk): d.rendered_manifest for pk, d in sorted(deployments.items())}
    against = None
    for event in events:
        diff = (event.get("detail") or {}).get("diff")
        if event["action"] in ("deployment.approve", "deployment.reject") and isinstance(diff, dict):
            against = diff.get("against")
    diff_text = ""
    if against:
        live = Deployment.objects.filter(pk=against).values_list("rendered_manifest", flat=True).first() or ""
        diff_text = "\n".join(manifest_diff(live, deployment.rendered_manifest))
    logs = {}
    for job_id in subject["jobs"]:
        logs[job_id] = list(JobLogLine.objects.filter(job_id=job_id).order_by("id").values_list("message", flat=True))
    release = deployment.release
    return {
        "release": {"id": release.pk, "service": release.service.name, "version": release.version,
                    "image": release.image, "git_sha": release.git_sha, "notes": release.notes},
        "manifests": manifests,
        "diff": {"against": against, "text": diff_text},
        "job_logs": logs,
    }


# ---------------------------------------------------------------- the pack

def build_pack(deployment):
    """The evidence pack of a deployment (a dict; insertion order is the order people read it in)."""
    subject = _subject(deployment)
    events = _events_for(subject)
    attachments = _attachments(deployment, subject, events)
    problems = chain_problems(events)
    statements = derive_statements(subject, events, attachments)
    mismatched = [s["text"] for s in statements if s["facts"].get("matches") is False
                  or s["facts"].get("matches_record") is False]
    if problems:
        integrity = "AUDIT EVENTS FAIL VERIFICATION: " + "; ".join(problems)
    elif mismatched:
        integrity = "ATTACHMENTS DO NOT MATCH THE AUDIT EVENTS: " + " ".join(mismatched)
    else:
        integrity = f"verified: the {len(events)} audit event(s) behind this pack match their hashes and the chain"
    env = deployment.environment
    pack = {
        "integrity": integrity,
        "format": FORMAT,
        "generated_at": timezone.now().isoformat(),
        "deployment": {"id": deployment.pk, "kind": deployment.kind, "service": deployment.service.name,
                       "release": str(deployment.release), "environment": env.slug, "tier": env.tier,
                       "state": deployment.state, "break_glass": deployment.break_glass},
        "subject": subject,
        "verified": not problems and not mismatched,
        "problems": problems,
        "statements": statements,
        "events": events,
        "attachments": attachments,
    }
    pack["sha256"] = pack_sha256(pack)
    return pack


def verify_pack(pack):
    """Check a pack offline: its own SHA-256, each event's hash and the links between consecutive
    events, and that every statement follows from the events it carries. Returns a list of problems."""
    problems = []
    if not isinstance(pack, dict) or pack.get("format") != FORMAT:
        return [f"not a Gantry evidence pack (format {FORMAT} expected)"]
    if pack.get("sha256") != pack_sha256(pack):
        problems.append("the pack's SHA-256 does not match its content (the pack was edited after it was built)")
    events = pack.get("events") or []
    by_seq = {}
    for event in events:
        try:
            ok = event_hash_ok(event)
        except (TypeError, KeyError, AttributeError):
            ok = False
        if not ok:
            problems.append(f"audit event #{event.get('seq')}: content does not match its hash")
        by_seq[event.get("seq")] = event
    for seq, event in by_seq.items():
        if isinstance(seq, int) and seq - 1 in by_seq and event.get("prev_hash") != by_seq[seq - 1].get("hash"):
            problems.append(f"audit event #{seq}: prev_hash does not match event #{seq - 1}")
    try:
        derived = derive_statements(pack["subject"], events, pack.get("attachments") or {})
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        problems.append(f"the statements cannot be rebuilt from the events ({exc.__class__.__name__}: {exc})")
    else:
        if derived != pack.get("statements"):
            given = pack.get("statements") or []
            first = next((i for i, (a, b) in enumerate(zip(derived, given, strict=False)) if a != b), min(len(derived), len(given)))
            problems.append(f"statement {first + 1} does not follow from the audit events in the pack "
                            "(a statement or an event was edited)")
    if pack.get("problems"):
        problems.append("when it was built, the pack already said: " + pack.get("integrity", ""))
    return problems


def pack_text(pack):
    """The pack as pretty JSON, its integrity line first."""
    return json.dumps(pack, indent=2, ensure_ascii=False, default=str) + "\n"
