from portal.jobs.services import job_kind

from .archive import archive_old_events


@job_kind("audit.archive", queue="default", title="Archive old audit events")
def archive_audit_events(job, log):
    segments = archive_old_events(log=log)
    return {"segments": len(segments), "events": sum(s.count for s in segments),
            "last_seq": segments[-1].last_seq if segments else None}
