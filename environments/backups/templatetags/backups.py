"""`{% backup_status env %}`: the RPO badge and last drill of each backup target of an environment
(for the environment page and the board)."""
from django import template

register = template.Library()


@register.inclusion_tag("backups/_status.html")
def backup_status(environment):
    from environments.backups.views import status_rows_for

    return {"backup_rows": status_rows_for(environment)}


@register.filter
def backup_rows_for(status_by_environment, environment):
    """With `backup_status = status_rows_by_environment(envs)` in the context (one batch of queries for a
    whole board): `{% include "backups/_status.html" with backup_rows=backup_status|backup_rows_for:env %}`."""
    return (status_by_environment or {}).get(environment.pk, [])
