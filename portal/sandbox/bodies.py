"""A request's body checked against its URL the way the API server does, and the fields it sets."""

from __future__ import annotations

import copy

from . import errors
from .patches import field_paths

# Server-owned metadata a client cannot set or change.
SERVER_METADATA = ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields")


def check_body(resource, namespace, body, url_name=None):
    """Check the request body against the URL, the way the API server does, and own a copy."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be an object")
    body = copy.deepcopy(body)
    for field, expected in (("apiVersion", resource.api_version), ("kind", resource.kind)):
        if body.get(field) not in (None, "", expected):
            raise errors.bad_request(f"the {field} in the data ({body[field]}) does not match the expected {field} ({expected})")
        body[field] = expected
    metadata = body.get("metadata")
    if metadata is None:
        metadata = body["metadata"] = {}
    if not isinstance(metadata, dict):
        raise errors.bad_request("metadata must be an object")
    if url_name is not None:
        if metadata.get("name") not in (None, "", url_name):
            raise errors.bad_request(f"the name of the object ({metadata['name']}) does not match the name on the URL ({url_name})")
        metadata["name"] = url_name
    if resource.namespaced:
        if metadata.get("namespace") not in (None, "", namespace):
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    return body

def check_version(resource, live, body):
    wanted = body.get("metadata", {}).get("resourceVersion")
    if wanted and wanted != live["metadata"]["resourceVersion"]:
        raise errors.conflict(resource, live["metadata"]["name"])


def requested_fields(request_body):
    """The field paths a request sets, for its managedFields entry (JSON patches: none)."""
    if not isinstance(request_body, dict):
        return set()
    paths = field_paths({k: v for k, v in request_body.items() if k in ("metadata", "spec", "data", "stringData", "status")})
    server_owned = {("metadata", n) for n in ("name", "namespace", *SERVER_METADATA)}
    return {p for p in paths if p[:2] not in server_owned}
