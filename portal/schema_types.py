"""Field types for the declared input schemas (ninja/pydantic), and their base class `InputSchema`.

Pydantic's default (lax) mode turns `true` into the release id 1, `"yes"` and `1` into `true`,
and `true` into one replica. These types take JSON as it is: a boolean only from `true`/`false`,
an integer only from a JSON integer (never a boolean or a string), and lists with a cap, so
that nobody can store 20,000 deployment windows and make every listing megabytes long.
"""
from typing import Annotated, Any

from ninja import Schema
from pydantic import (  # noqa: F401  (StrictInt re-exported)
    BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StringConstraints, ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from portal.errors import InvalidInput
from portal.validation import check_text

OptionalFlag = StrictBool | None

MAX_ID = 2**63 - 1  # PostgreSQL bigint
ObjectId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


def bounded(low, high):
    """A strict integer between `low` and `high` (the schema says so too)."""
    return Annotated[StrictInt, Field(ge=low, le=high)]


def capped_list(item, max_items):
    return Annotated[list[item], Field(max_length=max_items)]


ShortText = Annotated[str, StringConstraints(max_length=200)]
ShortTexts = capped_list(ShortText, 50)  # checklists, approver groups
Windows = capped_list(dict[str, Any], 50)  # deployment windows


# --- declared input schemas: one per write operation, shared by page and API -----------------------
# A schema declares an operation's fields twice over: each field's JSON type (what ninja checks when it
# reads the API's body, as before: a wrong type is a 400 at once) and each field's rule with its message
# (a `rule`, checked only when the service validates, after its permission check, so that a caller
# without the role gets the audited 403 whatever the input). The page hands its form to the same
# service, which validates it with `coerce` (form text "3" is the number 3).


def refuse(*messages):
    """Fail a field (or the whole schema) with these messages, each already saying its field."""
    raise PydanticCustomError("gantry", "{detail}", {"detail": "; ".join(messages), "messages": list(messages)})


def location(loc):
    parts = [str(p) for p in loc if p not in ("body", "payload", "query")]
    return ".".join(parts) or "body"


def error_messages(errors):
    """Pydantic's errors as Gantry's messages: ours as written, the others as 'field: message'."""
    messages = []
    for error in errors:
        ctx = error.get("ctx") or {}
        if error.get("type") == "gantry" and "messages" in ctx:
            messages.extend(ctx["messages"])
        else:
            messages.append(f"{location(error.get('loc', ()))}: {error.get('msg', 'invalid')}")
    return messages


def checking_rules(info):
    """True when a service validates (InputSchema.validated); False when ninja reads a body."""
    return bool(info.context and info.context.get("rules"))


def coercing(info):
    return bool(info.context and info.context.get("coerce"))


class InputSchema(Schema):
    """The input of one operation. `validated(data)` is what a service calls: the given fields, clean."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def validated(cls, data):
        """`data` (a page's form or a command's dict, or the API's body as ninja read it) checked against
        every rule: {field: clean value} for the fields given. Raises InvalidInput with every message."""
        from_api = isinstance(data, InputSchema)
        if from_api:
            data = {field: getattr(data, field) for field in data.model_fields_set if field in cls.model_fields}
        try:
            model = cls.model_validate(data, context={"rules": True, "coerce": not from_api})
        except ValidationError as exc:
            raise InvalidInput(error_messages(exc.errors(include_url=False))) from None
        return {field: getattr(model, field) for field in model.model_fields_set}

    @classmethod
    def given(cls, data):
        """What the caller gave, before the rules: a dict as it is, or the fields of the API's body."""
        return data if not isinstance(data, InputSchema) else {f: getattr(data, f) for f in data.model_fields_set}


def rule(check):
    """A field's rule: `check(value, field)` returns the clean value or calls `refuse`."""
    def validate(value, info):
        return check(value, info.field_name) if checking_rules(info) else value
    return BeforeValidator(validate)


def checked(check, **options):
    """A field rule from a `portal.validation` check (value, field, errors, **options) -> clean value."""
    def validate(value, field):
        errors = []
        clean = check(value, field, errors, **options)
        if errors:
            refuse(*errors)
        return clean
    return rule(validate)


def whole_number(low, high, unit="", optional=False, message=""):
    """A whole number from `low` to `high`: a JSON integer, or (form input) its digits; `optional`:
    or nothing (null, or a blank form field). `message` (formatted with field, value, low and high)
    replaces the usual refusal where an operation has always said it otherwise."""
    def validate(value, info):
        if not checking_rules(info):
            return value
        if optional and value in (None, ""):
            return None
        try:
            if isinstance(value, bool) or not (isinstance(value, int) or coercing(info)):
                raise ValueError
            number = int(value)
            if not low <= number <= high:
                raise ValueError
            return number
        except (TypeError, ValueError):
            if message:
                refuse(message.format(field=info.field_name, value=value, low=low, high=high))
            if unit:
                refuse(f"{info.field_name}: '{value}' must be a whole number of {unit} between {low} and {high}")
            refuse(f"{info.field_name}: '{value}' must be a whole number from {low} to {high}")
    return BeforeValidator(validate)


def true_or_false(message="{field}: must be true or false"):
    """A field rule: `true` or `false`, nothing else; `message` (formatted with the field) when not."""
    def validate(value, field):
        if not isinstance(value, bool):
            refuse(message.format(field=field))
        return value
    return rule(validate)


def one_of(choices, message):
    """A field rule: one of `choices`; `message` (formatted with field, value and the choices, joined with
    ", ") when not."""
    def validate(value, field):
        if value not in choices:
            refuse(message.format(field=field, value=value, choices=", ".join(choices)))
        return value
    return rule(validate)


TrueOrFalse = Annotated[StrictBool | None, true_or_false()]

# A team and a description, of a service as of an environment (the board filters both by team).
Team = Annotated[str | None, checked(check_text, required=False, max_length=100)]
Description = Annotated[str | None, checked(check_text, required=False, max_length=2000)]


def text_list(max_items, max_length=200):
    """A list of non-empty texts (stripped), at most `max_items` of `max_length` characters."""
    def validate(value, field):
        items = value or []
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() and len(i) <= max_length
                                                  for i in items):
            refuse(f"{field}: must be a list of non-empty texts (at most {max_length} characters each)")
        if len(items) > max_items:
            refuse(f"{field}: at most {max_items} items")
        return [i.strip() for i in items]
    return rule(validate)


# ---------------------------------------------------------------- response schemas

class Out(BaseModel):
    """An API response schema: exactly the keys its serializer returns.

    `extra="forbid"`: a key the serializer returns but the schema does not declare is an error (a 500
    in the tests, never a silently dropped field), so the OpenAPI document cannot drift from what the
    API answers; the fuzz test checks the other direction (every answer matches its schema)."""

    model_config = ConfigDict(extra="forbid")


# Times are ISO 8601 strings made by the serializers (`isoformat()`); kept as strings so that the
# answer is byte for byte what it was (a datetime field would rewrite "+00:00" as "Z").
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalTimestamp = Timestamp | None


def iso(value):
    """A Timestamp as the serializers give it: the time's `isoformat()`, or None for no time."""
    return value.isoformat() if value else None


# ---------------------------------------------------------------- decisions (approve, reject)

MAX_COMMENT = 2000


def comment_rule(required, missing="comment: required to reject (say what must change)"):
    """A decision's comment: text, stripped, at most MAX_COMMENT characters; `required`: not empty
    (`missing` says why it is needed)."""
    def validate(value, field):
        comment = "" if value is None else value
        if not isinstance(comment, str):
            refuse("comment: must be text")
        comment = comment.strip()
        if required and not comment:
            refuse(missing)
        if len(comment) > MAX_COMMENT:
            refuse(f"comment: at most {MAX_COMMENT} characters (got {len(comment)})")
        return comment
    return rule(validate)


Comment = Annotated[str | None, comment_rule(required=False)]
RejectionComment = Annotated[str | None, comment_rule(required=True)]


class Approval(InputSchema):
    """Approve a pending request (a deployment, an environment): an optional comment."""

    comment: Comment = ""


class Rejection(InputSchema):
    """Reject a pending request: the comment says what must change."""

    comment: RejectionComment = ""
