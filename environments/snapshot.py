"""An environment as the audit log records it: its fields (and protection rules) as a change's before
and after, names for the rows it points to."""


RULE_FIELDS = ("required_approvals", "prevent_self_approval", "deployment_windows", "freeze_until", "freeze_reason",
               "approver_groups", "checklist", "promotion_from", "rollback_requires_approval")
ENV_AUDIT_FIELDS = ("name", "slug", "tier", "cluster", "namespace", "owner", "team", "description", "status",
                    "ttl_hours", "replicas", "blue_green_keep_minutes", "webhook_url", "notify_emails") + RULE_FIELDS


def env_snapshot(env):
    data = {}
    for field in ENV_AUDIT_FIELDS:
        value = getattr(env, field)
        if field in ("cluster", "owner", "promotion_from"):
            value = str(value) if value is not None else None
        elif field == "freeze_until" and value is not None:
            value = value.isoformat()
        data[field] = value
    return data
