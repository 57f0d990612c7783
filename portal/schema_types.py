"""Strict field types for the API's declared schemas (ninja/pydantic).

Pydantic's default (lax) mode turns `true` into the release id 1, `"yes"` and `1` into `true`,
and `true` into one replica. These types take JSON as it is: a boolean only from `true`/`false`,
an integer only from a JSON integer (never a boolean or a string), and lists with a cap, so
that nobody can store 20,000 deployment windows and make every listing megabytes long.
"""
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints, WithJsonSchema  # noqa: F401  (StrictInt re-exported)

Flag = StrictBool
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
