"""The go/no-go rule: an environment may require that a release passed verification upstream first."""
from .config import settings_for
from .models import Verification


def source_verification(release, environment):
    """The latest verification of this release in the environment's ``promotion_from`` (or None)."""
    if not environment.promotion_from_id:
        return None
    return (Verification.objects.select_related("deployment")
            .filter(deployment__release=release, deployment__environment_id=environment.promotion_from_id)
            .order_by("-started_at").first())


def promotion_refusal(release, environment):
    """Why ``release`` may not be requested in ``environment`` under its go/no-go rule, or None."""
    if not environment.promotion_from_id or not settings_for(environment).require_verified_promotion:
        return None
    verification = source_verification(release, environment)
    source = environment.promotion_from.slug
    if verification is None:
        return f"{environment.slug} requires a release that passed verification in {source}; {release} was never verified there"
    if verification.state != "passed":
        return (f"{environment.slug} requires a release that passed verification in {source}; the verification of {release} "
                f"there is {verification.state}" + (f": {verification.reason}" if verification.reason else ""))
    return None
