"""docs/api.md lists exactly the endpoints of the OpenAPI document (the reference cannot drift)."""
import re
from pathlib import Path

import pytest

from portal.api import api

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROW = re.compile(r"^\| `(GET|POST|PATCH|PUT|DELETE) (/api/v1/[^`]*)` \|", re.M)


def documented():
    return {(method, path) for method, path in ROW.findall(DOC.read_text())}


def served():
    paths = api.get_openapi_schema()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def test_every_endpoint_of_the_openapi_document_is_in_docs_api_md():
    missing = sorted(served() - documented())
    assert not missing, f"add a row to docs/api.md for: {missing}"


def test_docs_api_md_lists_no_endpoint_the_api_does_not_serve():
    stale = sorted(documented() - served())
    assert not stale, f"docs/api.md lists endpoints the API does not serve: {stale}"


@pytest.mark.parametrize("link", ["shared/", "../shared"])
def test_the_docs_do_not_send_readers_outside_the_repository(link):
    for page in [DOC, DOC.parent / "architecture.md", DOC.parents[1] / "README.md"]:
        assert link not in page.read_text(), f"{page.name} points at {link}"
