"""What the account operations take (a role to grant, an API token to create): one declared schema per
operation, for the page and the command alike. Whether the environment exists, and the password
rules of the user to be created, are the service's to check (portal.accounts.services)."""
from typing import Annotated

from portal.schema_types import InputSchema, checked, one_of
from portal.validation import check_text

from .choices import ROLES


class RoleGrant(InputSchema):
    """Give a user (by name) a role, globally or for one environment (its slug; none: global)."""

    username: Annotated[str | None, checked(check_text, max_length=150)]
    role: Annotated[str | None, one_of(ROLES, "{field}: '{value}' is not one of {choices}")]
    environment: str | None = None


class TokenCreate(InputSchema):
    """A bearer token for the signed-in user, with an optional label."""

    name: Annotated[str | None, checked(check_text, required=False, max_length=100)] = None
