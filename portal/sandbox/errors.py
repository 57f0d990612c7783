"""API errors, raised anywhere in the sandbox and answered as real ``Status`` objects."""

from __future__ import annotations


class ApiError(Exception):
    """An answer the API server gives instead of an object: HTTP code plus a ``Status`` body."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(resource, name):
    if resource is None:
        return {"name": name}
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource, name):
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def already_exists(resource, name):
    return ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', _details(resource, name))


def conflict(resource, name):
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(resource, name),
    )


def invalid(message, resource=None, name=None, field=None):
    if resource is not None:
        kind = resource.kind + (f".{resource.group}" if resource.group else "")
        message = f'{kind} "{name}" is invalid: {message}'
    details = _details(resource, name) if resource is not None else None
    if details is not None and field:
        details["causes"] = [{"reason": "FieldValueInvalid", "message": message, "field": field}]
    return ApiError(422, "Invalid", message, details)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def forbidden(message, resource=None, name=None):
    return ApiError(403, "Forbidden", message, _details(resource, name) if resource else None)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def unsupported_resource():
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed(method):
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})")
