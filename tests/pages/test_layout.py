"""The layout every page shares: navigation, logout, assets, CSP, no inline code."""
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from django.conf import settings

from tests.pages.conftest import text

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_it_sends_a_strict_content_security_policy(login, viewer):
    response = login(viewer).get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp


def test_it_loads_htmx_and_gantry_js_from_static_files(login, viewer):
    body = text(login(viewer).get("/"))
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in body
    assert '<script src="/static/gantry.js" defer></script>' in body
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false}'>""" in body
    assert (Path(settings.BASE_DIR) / "static/vendor/htmx.min.js").stat().st_size > 10_000


def test_it_puts_the_csrf_token_in_a_meta_tag_for_htmx(login, viewer):
    body = text(login(viewer).get("/"))
    assert re.search(r'<meta name="csrf-token" content="[A-Za-z0-9]{32,}">', body)


def test_no_template_has_an_inline_script_style_or_event_handler():
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        source = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"<style\b", r"\sstyle\s*=", r"\son[a-z]+\s*=", r"\bhx-on",
                        r"javascript:"):
            if re.search(pattern, source, re.I):
                offenders.append(f"{path.relative_to(TEMPLATES)}: {pattern}")
    assert offenders == []


def test_it_logs_out_with_a_post_form(login, viewer):
    body = text(login(viewer).get("/"))
    assert re.search(r'<form method="post" action="/logout/"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"', body)


def test_it_logs_out_on_post(login, viewer, client):
    login(viewer)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_it_shows_the_audit_link_only_to_auditors(login, viewer, deployer, client):
    assert 'href="/audit/"' in text(login(viewer).get("/"))
    client.logout()
    assert 'href="/audit/"' not in text(login(deployer).get("/"))


def test_it_shows_clusters_and_users_links_only_to_admins(login, admin, deployer, client):
    body = text(login(admin).get("/"))
    assert 'href="/clusters/"' in body and 'href="/users/"' in body
    client.logout()
    body = text(login(deployer).get("/"))
    assert 'href="/clusters/"' not in body and 'href="/users/"' not in body


def test_it_shows_the_user_name(login, deployer):
    assert ">dee</a>" in text(login(deployer).get("/"))


def test_it_renders_times_in_the_browsers_zone(login, admin, make_env, client):
    make_env("dev-a", ttl_hours=5, expires_at="2030-01-01T00:00:00+00:00")
    client.cookies["gantry_tz"] = "Asia/Seoul"
    body = text(login(admin).get("/environments/"))
    assert "2030-01-01 09:00:00 KST" in body


def test_it_falls_back_to_utc_for_an_unknown_zone(login, admin, make_env, client):
    make_env("dev-a", ttl_hours=5, expires_at="2030-01-01T00:00:00+00:00")
    client.cookies["gantry_tz"] = "Mars/Olympus"
    assert "2030-01-01 00:00:00 UTC" in text(login(admin).get("/environments/"))


def test_it_shows_the_login_form_with_labels(client, db):
    body = text(client.get("/login/"))
    assert '<label for="id_username">' in body and '<label for="id_password">' in body


def test_it_shows_login_errors(client, viewer):
    response = client.post("/login/", {"username": "vic", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in text(response)


def test_it_signs_in(client, viewer):
    response = client.post("/login/", {"username": "vic", "password": "pw-12345-gantry"})
    assert response.status_code == 302 and response.url == "/"


def test_it_shows_the_404_page_in_the_layout(login, viewer):
    response = login(viewer).get("/environments/no-such-env/")
    assert response.status_code == 404
    assert "Not found" in text(response)
    assert 'action="/logout/"' in text(response)  # the same layout, signed in


def test_static_js_sets_the_timezone_cookie_confirms_and_sends_csrf():
    source = (Path(settings.BASE_DIR) / "static/gantry.js").read_text()
    assert "gantry_tz=" in source and "resolvedOptions().timeZone" in source
    assert "data-confirm" in source and "htmx:configRequest" in source and "X-CSRFToken" in source


class FormControls(HTMLParser):
    """Collects form controls that have no label, and links or buttons that do nothing for a keyboard."""

    def __init__(self):
        super().__init__()
        self.label_for, self.ids, self.unlabelled, self.fake_buttons, self.in_label = set(), {}, [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.in_label += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            if not (self.in_label or attrs.get("aria-label") or attrs.get("aria-hidden")):
                self.ids[attrs.get("id") or f"<{tag} name={attrs.get('name')}>"] = attrs.get("name")
        elif tag in ("a", "div", "span") and ("onclick" in attrs or attrs.get("role") == "button"):
            self.fake_buttons.append(tag)

    def handle_endtag(self, tag):
        if tag == "label":
            self.in_label -= 1

    def missing(self):
        return [name for name in self.ids if name not in self.label_for]


@pytest.mark.parametrize("url", ["/", "/environments/", "/environments/new/", "/environments/dev-a/",
                                 "/environments/dev-a/edit/", "/services/", "/services/new/", "/services/web/edit/",
                                 "/clusters/", "/clusters/new/", "/jobs/", "/audit/", "/users/", "/tokens/",
                                 "/environments/dev-a/delete/"])
def test_every_form_control_has_a_label(login, admin, make_env, make_service, remote_cluster, url):
    make_env("dev-a", cluster=remote_cluster)
    make_service("web")
    response = login(admin).get(url)
    assert response.status_code == 200
    parser = FormControls()
    parser.feed(text(response))
    assert parser.missing() == [] and parser.fake_buttons == []


def test_the_axe_browser_test_opens_every_page_the_urlconf_routes():
    """tests/e2e/test_every_page_axe.py runs axe on EVERY page: a new route is either in its page
    list or named in NOT_PAGES (a fragment, a download, a POST-only action)."""
    from types import SimpleNamespace

    from django.urls import Resolver404, URLPattern, resolve

    from portal import web_urls
    from tests.e2e.test_every_page_axe import NOT_PAGES, pages

    def route(path):
        try:
            return resolve(path.split("?")[0]).url_name
        except Resolver404:  # the 404 and 500 pages
            return None

    thing = SimpleNamespace(pk=1, slug="x", name="x")
    job = SimpleNamespace(pk="00000000-0000-0000-0000-000000000000")
    opened = {route(path) for path, _ in pages({"prod": thing, "pending": thing, "succeeded": thing, "job": job,
                                                "backup": thing, "drill": thing, "template": thing})}
    routed = {p.name for p in web_urls.urlpatterns if isinstance(p, URLPattern)}
    not_pages = {name for names in NOT_PAGES.values() for name in names}
    missing = routed - opened - not_pages
    assert not missing, f"pages axe does not open: {sorted(missing)}; add them to pages() or NOT_PAGES"
    assert not_pages <= routed and not (not_pages & opened)  # nothing stale, nothing twice
