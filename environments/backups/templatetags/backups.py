"""`{% backup_status env %}`: the RPO badge and last drill of each backup target of an environment
(for the environment page and the board)."""
from django import template

from environments.backups.views import status_rows_by_environment, status_rows_for

register = template.Library()


@register.inclusion_tag("backups/_status.html")
def backup_status(environment):
    return {"backup_rows": status_rows_for(environment)}


@register.simple_tag
def backup_statuses(environments):
    """`{% backup_statuses board.environments as backup_status %}`: the board badges of every environment
    in one query (views.status_rows_by_environment), read per column with `backup_rows_for`."""

    return status_rows_by_environment(environments)


@register.filter
def backup_rows_for(status_by_environment, environment):
    """`{% include "backups/_board_status.html" with backup_rows=backup_status|backup_rows_for:env %}`."""
    return (status_by_environment or {}).get(environment.pk, [])
