"""Template tags shared by the list pages (their filter forms)."""
from django import template

register = template.Library()


@register.inclusion_tag("_filter_select.html")
def filter_select(name, label, all_label, options, selected, value=None, text=None):
    """One <select> of a list page's filter form, with an "all" choice first.

    `options` are objects (the `value` attribute is sent, the `text` attribute shown; `text`
    defaults to `value`), (value, label) pairs, or plain values shown as they are."""
    pairs = []
    for option in options:
        if value:
            pairs.append((str(getattr(option, value)), getattr(option, text or value)))
        elif isinstance(option, (tuple, list)):
            pairs.append((str(option[0]), option[1]))
        else:
            pairs.append((str(option), option))
    return {"name": name, "label": label, "all_label": all_label, "pairs": pairs,
            "selected": "" if selected is None else str(selected)}
