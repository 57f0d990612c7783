"""What every page's navigation needs to know about the user."""
from environments.policies import creatable_tiers
from portal.accounts import policies


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav": {
            "is_admin": policies.is_admin(user),
            "can_view_audit": policies.can_view_audit(user),
            "has_role": policies.has_any_role(user),
            "can_create_environment": bool(creatable_tiers(user)),
        }
    }
