"""`{% backup_status env %}`: the RPO badge and last drill of each backup target of an environment
(for the environment page and the board)."""
from django import template

register = template.Library()


@register.inclusion_tag("backups/_status.html")
def backup_status(environment):
    from environments.backups.views import status_rows_for

    return {"backup_rows": status_rows_for(environment)}
