"""Serving a pack: who may see one, and the ZIP an auditor takes away."""
import io
import zipfile

from deployments.models import Deployment
from portal.audit import queries as audit_rule
from portal.errors import NotFound

from .evidence import build_pack, pack_text


def require_auditor(user):
    """Evidence packs (one deployment's or a period's) are for auditors (portal.audit.queries' rule)."""
    audit_rule.require_auditor(user, needs="evidence packs need")


def evidence_for(user, deployment_id):
    """Build the pack of a deployment for `user` (an auditor: global viewer or admin)."""
    require_auditor(user)
    deployment = (Deployment.objects.select_related("release__service", "service", "environment")
                  .filter(pk=deployment_id).first())
    if deployment is None:
        raise NotFound(f"no deployment #{deployment_id}")
    return deployment, build_pack(deployment)


def pack_zip(pack):
    """pack.json, the rendered manifests, the reviewed diff and each job log, in one ZIP (bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        add_pack(archive, pack, prefix="")
    return buffer.getvalue()


def add_pack(archive, pack, prefix):
    number = pack["deployment"]["id"]
    attachments = pack["attachments"]
    archive.writestr(f"{prefix}README.txt", f"{pack['integrity']}\n\nEvidence pack of deployment #{number} "
                     f"({pack['deployment']['release']} to {pack['deployment']['environment']}).\nsha256 {pack['sha256']}\n"
                     "Check it offline: python manage.py evidence_verify pack.json\n")
    archive.writestr(f"{prefix}pack.json", pack_text(pack))
    for key, text in attachments["manifests"].items():
        archive.writestr(f"{prefix}manifests/deployment-{key}.yaml", text)
    if attachments["diff"]["text"]:
        archive.writestr(f"{prefix}diff.patch", attachments["diff"]["text"] + "\n")
    for job_id, lines in attachments["job_logs"].items():
        archive.writestr(f"{prefix}job-{job_id}.log", "\n".join(lines) + "\n")
