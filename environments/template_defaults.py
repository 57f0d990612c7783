"""The four templates every Gantry starts with (a data migration seeds them; the demo and the
tests use them). The production values are those of the platform plans our users wrote:
quota 50 / 100Gi requested, 100 / 200Gi limits; containers default to 500m / 512Mi limits and
250m / 256Mi requests, at most 4 / 8Gi and at least 100m / 128Mi."""

CONTAINER_LIMITS = {
    "default": {"cpu": "500m", "memory": "512Mi"},
    "default_request": {"cpu": "250m", "memory": "256Mi"},
    "max": {"cpu": "4", "memory": "8Gi"},
    "min": {"cpu": "100m", "memory": "128Mi"},
}

SEEDED_TEMPLATES = [
    {
        "name": "preview",
        "description": "A short-lived environment per pull request or experiment; expires unless extended.",
        "tier": "preview",
        "quota": {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4", "limits.memory": "8Gi",
                  "pods": "20"},
        "limit_range": {
            "default": {"cpu": "500m", "memory": "512Mi"},
            "default_request": {"cpu": "250m", "memory": "256Mi"},
            "max": {"cpu": "2", "memory": "4Gi"},
            "min": {"cpu": "100m", "memory": "128Mi"},
        },
        "ttl_hours": 72,
        "max_ttl_hours": 168,
        "requires_approval": False,
        "parameters": {"cpu": {"min": "500m", "max": "4"}, "memory": {"min": "1Gi", "max": "8Gi"}},
    },
    {
        "name": "team-dev",
        "description": "A team's long-lived development namespace.",
        "tier": "development",
        "quota": {"requests.cpu": "8", "requests.memory": "16Gi", "limits.cpu": "16", "limits.memory": "32Gi",
                  "pods": "50"},
        "limit_range": CONTAINER_LIMITS,
        "ttl_hours": None,
        "max_ttl_hours": None,
        "requires_approval": False,
        "parameters": {"cpu": {"min": "2", "max": "16"}, "memory": {"min": "4Gi", "max": "32Gi"}},
    },
    {
        "name": "staging",
        "description": "A staging environment; needs an approver's yes.",
        "tier": "staging",
        "quota": {"requests.cpu": "20", "requests.memory": "40Gi", "limits.cpu": "40", "limits.memory": "80Gi",
                  "pods": "100"},
        "limit_range": CONTAINER_LIMITS,
        "ttl_hours": None,
        "max_ttl_hours": None,
        "requires_approval": True,
        "required_approvals": 1,
        "parameters": {"cpu": {"min": "4", "max": "40"}, "memory": {"min": "8Gi", "max": "80Gi"}},
    },
    {
        "name": "production",
        "description": "A production environment; needs two approvers, never the requester.",
        "tier": "production",
        "quota": {"requests.cpu": "50", "requests.memory": "100Gi", "limits.cpu": "100", "limits.memory": "200Gi",
                  "persistentvolumeclaims": "20", "services.loadbalancers": "2"},
        "limit_range": CONTAINER_LIMITS,
        "ttl_hours": None,
        "max_ttl_hours": None,
        "requires_approval": True,
        "required_approvals": 2,
        "parameters": {"cpu": {"min": "10", "max": "100"}, "memory": {"min": "20Gi", "max": "200Gi"}},
    },
]


def seed_templates(template_model):
    """Create the seeded templates that are missing (never overwrite an admin's edits)."""
    created = []
    for values in SEEDED_TEMPLATES:
        values = dict(values)
        name = values.pop("name")
        _, was_created = template_model.objects.get_or_create(name=name, defaults=values)
        if was_created:
            created.append(name)
    return created
