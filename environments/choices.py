DEVELOPMENT = "development"
STAGING = "staging"
PRODUCTION = "production"
PREVIEW = "preview"

TIER_CHOICES = [(DEVELOPMENT, "development"), (STAGING, "staging"), (PRODUCTION, "production"), (PREVIEW, "preview")]
TIERS = [value for value, _ in TIER_CHOICES]
TIER_ORDER = {DEVELOPMENT: 0, PREVIEW: 1, STAGING: 2, PRODUCTION: 3}
SELF_SERVICE_TIERS = {DEVELOPMENT, PREVIEW}


class EnvironmentStatus:
    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"
    REJECTED = "rejected"
    CHOICES = [(s, s) for s in (REQUESTED, PROVISIONING, READY, FAILED, DELETING, DELETED, REJECTED)]
    GONE = (DELETED, REJECTED)  # kept for history and audit; they hold their name but nothing else


# Allowed status transitions of an environment (DESIGN rule 2).
# Leaving `deleting`, the row itself goes (the teardown job deletes it once the namespace is gone).
ENVIRONMENT_TRANSITIONS = {
    EnvironmentStatus.REQUESTED: {EnvironmentStatus.PROVISIONING, EnvironmentStatus.FAILED, EnvironmentStatus.DELETING,
                                  EnvironmentStatus.REJECTED},
    EnvironmentStatus.PROVISIONING: {EnvironmentStatus.READY, EnvironmentStatus.FAILED, EnvironmentStatus.DELETING},
    EnvironmentStatus.READY: {EnvironmentStatus.PROVISIONING, EnvironmentStatus.DELETING},
    EnvironmentStatus.FAILED: {EnvironmentStatus.PROVISIONING, EnvironmentStatus.DELETING},
    EnvironmentStatus.DELETING: {EnvironmentStatus.DELETED},
    EnvironmentStatus.DELETED: set(),
    EnvironmentStatus.REJECTED: set(),
}

CLUSTER_MODE_CHOICES = [
    ("server", "API server URL and token"),
    ("kubeconfig_path", "kubeconfig file on the Gantry host"),
    ("kubeconfig", "pasted kubeconfig (stored encrypted)"),
    ("in_cluster", "in-cluster service account"),
]

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
