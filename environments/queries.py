"""Read-only lookups shared by pages and the API (and by the apps above environments)."""
from portal.accounts import policies
from portal.errors import NotFound

from .models import Environment


def visible_environment(user, slug):
    """The environment `slug` if `user` may see it; NotFound otherwise, so that its existence is not
    revealed (the API answers 404, pages show the 404 page through `portal.pages.needs_role`)."""
    env = Environment.objects.select_related("cluster", "owner", "promotion_from").filter(slug=slug).first()
    if env is None or not policies.can_view_environment(user, env):
        raise NotFound(f"no environment '{slug}'")
    return env
