"""Job kinds: the registry of what a job of each kind runs, on which queue, and what it is called.

Each app registers its kinds with `@job_kind` in its `jobs.py` (`portal.jobs.services` re-exports it);
pages name a job by its kind's `title` (`Job.title`), never by the raw kind string.
"""
from importlib import import_module

from django.apps import apps
from django.conf import settings

QUEUES = tuple(settings.RQ_QUEUES)  # deploy, backups, health, default: the queues and their timeouts are the settings'
_KINDS = {}


class JobKind:
    def __init__(self, name, func, queue, title, system=False, resume=True):
        self.name, self.func, self.queue, self.title, self.system = name, func, queue, title, system
        self.resume = resume


def job_kind(name, queue="default", title="", system=False, resume=True):
    """Register `func(job, log)` as the code for jobs of kind `name`, called `title` on the pages.

    `system=True` marks housekeeping nobody asked for by hand (sending notifications): job lists
    hide those unless asked to show them. `resume=False`: a job cut off (its worker died, its
    database connection was lost) stays failed instead of being sent again automatically, because
    its owner cleans the interrupted work up (a backup aborts its partial upload).
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue}")

    def decorator(func):
        _KINDS[name] = JobKind(name, func, queue, title or name, system, resume)
        return func

    return decorator


def get_kind(name):
    load_job_modules()
    return _KINDS.get(name)


def system_kinds():
    """Names of the job kinds marked `system` (hidden from job lists by default)."""
    load_job_modules()
    return sorted(name for name, spec in _KINDS.items() if spec.system)


def kind_title(name):
    """The readable title of a job kind ("Provision environment"), shown wherever a job is named;
    a kind nobody registered (an old row) is shown as it is."""
    spec = get_kind(name)
    return spec.title if spec is not None else name


_loaded = False


def load_job_modules():
    """Import each app's jobs.py so its kinds are registered (in the web process and in workers)."""
    global _loaded
    if _loaded:
        return
    for config in apps.get_app_configs():
        try:
            import_module(f"{config.name}.jobs")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.jobs":
                raise
    _loaded = True
