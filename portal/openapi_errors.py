"""Every API operation declares the errors it can answer, each with the one error schema."""

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                              "description": "what went wrong, in words a user can act on"}},
}
ERRORS = {
    "400": "Invalid input (nothing was changed)",
    "401": "No or bad credentials: send 'Authorization: Bearer <token>' or log in",
    "403": "The role or a rule forbids it (audited as denied)",
    "404": "No such object, or not visible to the caller",
    "409": "The object's state forbids the action",
    "429": "Too many failed attempts from this address; see the Retry-After header",
}


def declare_errors(schema):
    """Add the error responses to every operation of an OpenAPI document (in place), and return it."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(status, {"description": description,
                                              "content": {"application/json": {"schema": ref}}})
    return schema
