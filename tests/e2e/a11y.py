"""axe-core in the browser tests: vendored here (tests/e2e/vendor), never served by Gantry.

`assert_accessible(page)` injects axe through the DevTools protocol (page.evaluate is not subject to
the page's Content-Security-Policy, which forbids inline scripts) and fails on serious or critical
violations, naming the rule, the help text and the first offending elements.
"""
from pathlib import Path

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
FAIL_ON = ("serious", "critical")
EVERY_IMPACT = ("minor", "moderate", "serious", "critical")


def violations(page, impacts=FAIL_ON):
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]


def describe(found, url):
    lines = [f"axe: {len(found)} violation(s) on {url}"]
    for v in found:
        targets = [" ".join(node["target"]) if isinstance(node["target"], list) else str(node["target"])
                   for node in v["nodes"][:3]]
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} -> {targets}")
    return "\n".join(lines)


def assert_accessible(page):
    found = violations(page)
    assert not found, describe(found, page.url)
