"""Notifications: a Slack-compatible webhook per environment and e-mail (Django's backend).

`notify` is called inside the transaction of the change; the sending happens in a job after
commit, so a slow webhook never holds a request and a failure is visible on the job page.

A job sent again (automatically after a dead worker or a lost connection, or by a person after a
failed webhook) does not deliver twice: each channel's delivery is a log line of the job, written
as soon as it is confirmed, and a later attempt skips the channels an earlier one delivered.
"""
from django.conf import settings
from django.core.mail import send_mail

from environments.serializers import masked_url
from portal import outbound
from portal.jobs.models import JobLogLine
from portal.jobs.services import JobFailed, enqueue_job, job_kind
from portal.outbound import DeliveryFailed

from . import policies
from .models import Deployment

EVENTS = {
    "approval_needed": "Approval needed",
    "approved": "Approved",
    "rejected": "Rejected",
    "succeeded": "Deployment succeeded",
    "failed": "Deployment failed",
    "rolled_back": "Rolled back",
    "verification_failed": "Verification failed",
    "rollback_impossible": "Verification failed and nothing to roll back to",
}


def notify(deployment, event):
    """Queue the notification of `event` for a deployment (only the events people care about)."""
    if event not in EVENTS:
        return None
    env = deployment.environment
    if not env.webhook_url_encrypted and not _recipients(deployment, event):
        return None

    return enqueue_job("notification.send", target=deployment, environment=env,
                       params={"deployment": deployment.pk, "event": event})


def _recipients(deployment, event):
    env = deployment.environment
    addresses = set()
    if event == "approval_needed":
        addresses |= set(policies.approvers(env).exclude(email="").values_list("email", flat=True))
    elif deployment.requested_by_id and deployment.requested_by.email:
        addresses.add(deployment.requested_by.email)
    addresses |= {a.strip() for a in env.notify_emails.split(",") if a.strip()}
    return sorted(addresses)


def message(deployment, event):
    env = deployment.environment
    who = deployment.requested_by.get_username() if deployment.requested_by_id else "someone"
    flag = " [BREAK-GLASS]" if deployment.break_glass else ""
    text = (f"{EVENTS[event]}{flag}: {deployment.release} to {env.slug} ({env.tier}), deployment #{deployment.pk}, "
            f"requested by {who}.")
    if event == "failed" and deployment.error:
        text += f" Reason: {deployment.error[:300]}"
    base = settings.GANTRY_BASE_URL
    if base:
        text += f" {base.rstrip('/')}/deployments/{deployment.pk}/"
    return text


def post_webhook(url, payload, timeout=5):
    """POST through portal.outbound: public addresses only (checked again now), no redirects."""

    return outbound.post_json(url, payload, timeout=timeout)


WEBHOOK_DELIVERED = "webhook answered HTTP "
EMAIL_DELIVERED = "e-mail sent to "


def _delivered_before(job, prefix):
    """Whether an earlier attempt of this job already delivered on the channel whose log lines start so."""
    return JobLogLine.objects.filter(job_id=job.pk, message__startswith=prefix).exists()


@job_kind("notification.send", queue="default", title="Send notification", system=True)
def send_notification(job, log):
    deployment = (Deployment.objects.select_related("environment", "release__service", "requested_by")
                  .filter(pk=job.params.get("deployment")).first())
    if deployment is None:
        log("the deployment is gone; nothing to send")
        return {}
    event = job.params["event"]
    text = message(deployment, event)
    env = deployment.environment
    problems = []
    webhook_url = env.webhook_url
    if webhook_url and _delivered_before(job, WEBHOOK_DELIVERED):
        log("webhook already delivered by an earlier attempt; not sent again")
    elif webhook_url:
        payload = {"text": text, "username": "Gantry",
                   "attachments": [{"color": "danger" if event in ("failed", "rejected") else "good",
                                    "fields": [{"title": "environment", "value": env.slug, "short": True},
                                               {"title": "release", "value": str(deployment.release), "short": True},
                                               {"title": "state", "value": deployment.state, "short": True}]}]}

        try:
            status = post_webhook(webhook_url, payload)
            log(f"{WEBHOOK_DELIVERED}{status}")
        except DeliveryFailed as exc:  # one wording whatever the cause: the log tells no port from another
            problems.append(f"webhook to {masked_url(webhook_url)}: {exc}")
    recipients = _recipients(deployment, event)
    if recipients and _delivered_before(job, EMAIL_DELIVERED):
        log("e-mail already sent by an earlier attempt; not sent again")
    elif recipients:
        sent = send_mail(f"[Gantry] {EVENTS[event]}: {deployment.release} to {env.slug}", text,
                         settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
        log(f"{EMAIL_DELIVERED}{len(recipients)} recipient(s)" if sent else "e-mail backend sent nothing")
    if problems:
        raise JobFailed("; ".join(problems))
    return {"event": event, "emails": len(recipients)}
