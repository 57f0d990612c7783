"""Template tags shared by the forms: one rule for how a field shows the service's refusal.

A page that shows a refused form again passes `errors_by_field` (portal.pages.form_page). A field
named `name` has the id `id_<name>`, its help text the id `id_<name>-help` and its error list the id
`id_<name>-errors`; `field_id` overrides the field's id, and further names file their messages under this
field too (the release select shows the image's refusal)."""
from django import template
from django.utils.html import format_html

register = template.Library()


def _messages(context, names):
    """The messages of the first of `names` the service refused (None when it refused none)."""
    errors = context.get("errors_by_field") or {}
    return next((errors[name] for name in names if errors.get(name)), None)


@register.simple_tag(takes_context=True)
def field_aria(context, name, *more, field_id=None, help=False):
    """The field's aria attributes, with a leading space: aria-describedby naming its help text (with
    `help`) and its error list, and aria-invalid when the service refused it. Empty when neither."""
    field_id = field_id or f"id_{name}"
    invalid = _messages(context, (name, *more)) is not None
    described = ([f"{field_id}-help"] if help else []) + ([f"{field_id}-errors"] if invalid else [])
    if not described:
        return ""
    if invalid:
        return format_html(' aria-describedby="{}" aria-invalid="true"', " ".join(described))
    return format_html(' aria-describedby="{}"', " ".join(described))


@register.inclusion_tag("_field_errors.html", takes_context=True)
def field_errors(context, name, *more, field_id=None):
    """The field's error list (id `<field id>-errors`), shown above or below the input."""
    return {"messages_for_field": _messages(context, (name, *more)), "field_id": field_id or f"id_{name}"}
