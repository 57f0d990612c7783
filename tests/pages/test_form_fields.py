"""One rule for how a form field shows the service's refusal (portal/templatetags/form_fields.py):
the input points at its help text and its error list, and says it is invalid."""
from django.template import Context, Template


FIELD = ('{% load form_fields %}<input id="id_name"{% field_aria "name" help=True %}>{% field_errors "name" %}'
         '<select id="id_release"{% field_aria "release" "image" %}>{% field_errors "release" "image" %}')


def render(errors_by_field):
    return Template(FIELD).render(Context({"errors_by_field": errors_by_field}))


def test_a_field_without_errors_points_at_its_help_only():
    html = render({})
    assert '<input id="id_name" aria-describedby="id_name-help">' in html
    assert '<select id="id_release">' in html
    assert "field-errors" not in html


def test_a_refused_field_points_at_its_errors_and_is_invalid():
    html = render({"name": ["name: taken"], "image": ["image: not allowed"]})
    assert '<input id="id_name" aria-describedby="id_name-help id_name-errors" aria-invalid="true">' in html
    assert '<ul class="field-errors" id="id_name-errors"><li>name: taken</li></ul>' in html
    # the release select carries the image's refusal under its own id
    assert '<select id="id_release" aria-describedby="id_release-errors" aria-invalid="true">' in html
    assert '<ul class="field-errors" id="id_release-errors"><li>image: not allowed</li></ul>' in html
