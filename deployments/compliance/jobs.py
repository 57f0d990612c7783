from portal.jobs.services import job_kind

from .period import KIND, build_period_zip


@job_kind(KIND, queue="default", title="Build evidence for a period")
def period_evidence(job, log):
    return build_period_zip(job, log)
