"""Container restarts over a window ("4 restarts in 10 min"), from the pods' restart counts.

The cluster only gives a running total per container (``restartCount``), which starts again at 0
when a pod is replaced. Each probe compares the live pods' total with the one it saw last time: a
rise is that many restarts at this probe's time, kept in the cell's ``restart_log`` while they are
inside the window; a fall (pods replaced) only resets the baseline. A cell seen for the first time
has no baseline, so restarts from before Gantry looked are never counted as recent.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


def window_seconds():
    return max(60, settings.GANTRY_RESTART_WINDOW_SECONDS)


def degrade_at():
    return max(1, settings.GANTRY_RESTARTS_DEGRADE)


@dataclass
class Restarts:
    total: int | None  # the live pods' restart count now (None: not read this time)
    log: list  # [[epoch seconds, restarts], ...] inside the window
    recent: int  # restarts inside the window

    def sentence(self):
        """"4 restarts in 10 min" (the status reason), or "" when there were none."""
        if not self.recent:
            return ""
        window = window_seconds()
        span = f"{window // 60} min" if window % 60 == 0 else f"{window} s"
        return f"{self.recent} restart{'s' if self.recent != 1 else ''} in {span}"


def count(previous_total, previous_log, total, now):
    """Restarts with this probe's total added (``previous_*`` from the cell; None/[] for a new one)."""
    at = int(now.timestamp())
    log = [list(entry) for entry in previous_log or [] if entry[0] > at - window_seconds()]
    if total is not None and previous_total is not None and total > previous_total:
        log.append([at, total - previous_total])
    if total is None:  # not read this time: keep the baseline
        total = previous_total
    return Restarts(total, log, sum(entry[1] for entry in log))


def too_many(restarts):
    """Whether the restarts within the window reach ``GANTRY_RESTARTS_DEGRADE`` (a verification counts that probe as failed)."""
    return restarts is not None and restarts.recent >= degrade_at()


def apply(status, reason, restarts):
    """The cell's status and reason once recent restarts are taken into account.

    At ``GANTRY_RESTARTS_DEGRADE`` restarts within the window a healthy service is degraded; a
    worse status keeps its own reason with the restarts added to it.
    """
    if not too_many(restarts):
        return status, reason
    if status == "healthy":
        return "degraded", restarts.sentence()
    return status, f"{reason}; {restarts.sentence()}" if reason else restarts.sentence()
