from django.conf import settings
from django.db import models

from portal import crypto

from .choices import CLUSTER_MODE_CHOICES, TIER_CHOICES, EnvironmentStatus


class Cluster(models.Model):
    """A Kubernetes cluster Gantry can reach. Credentials are encrypted and never shown back."""

    name = models.SlugField(max_length=63, unique=True)
    mode = models.CharField(max_length=16, choices=CLUSTER_MODE_CHOICES, default="server")
    server = models.URLField(max_length=300, blank=True, default="")
    token_encrypted = models.TextField(blank=True, default="")
    ca_data = models.TextField(blank=True, default="")
    insecure = models.BooleanField(default=False)
    kubeconfig_path = models.CharField(max_length=500, blank=True, default="")
    kubeconfig_encrypted = models.TextField(blank=True, default="")
    context = models.CharField(max_length=200, blank=True, default="")
    is_sandbox = models.BooleanField(default=False, help_text="The built-in sandbox API used by the demo and tests.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    server_version = models.CharField(max_length=64, blank=True, default="")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_token(self):
        return crypto.decrypt(self.token_encrypted)

    def set_token(self, token):
        self.token_encrypted = crypto.encrypt(token)

    def get_kubeconfig(self):
        if self.mode == "kubeconfig_path" and self.kubeconfig_path:
            with open(self.kubeconfig_path, encoding="utf-8") as handle:
                return handle.read()
        return crypto.decrypt(self.kubeconfig_encrypted)

    def set_kubeconfig(self, text):
        self.kubeconfig_encrypted = crypto.encrypt(text)

    @property
    def has_token(self):
        return bool(self.token_encrypted)

    @property
    def location(self):
        """Where the cluster is, in words safe to show (never a credential)."""
        if self.mode == "server":
            return self.server
        if self.mode == "kubeconfig_path":
            return f"kubeconfig {self.kubeconfig_path}" + (f" (context {self.context})" if self.context else "")
        if self.mode == "kubeconfig":
            return "stored kubeconfig" + (f" (context {self.context})" if self.context else "")
        return "in-cluster service account"


class Environment(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=63, unique=True)
    tier = models.CharField(max_length=16, choices=TIER_CHOICES, db_index=True)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.PROTECT, related_name="environments")
    namespace = models.CharField(max_length=63)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_environments"
    )
    team = models.CharField(max_length=100, blank=True, default="")
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=EnvironmentStatus.CHOICES, default=EnvironmentStatus.PROVISIONING)
    template = models.CharField(max_length=100, blank=True, default="")
    ttl_hours = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Self-service: what the requester chose and the guardrails resolved from the template when the
    # environment was requested (a later template edit does not change an existing environment).
    parameters = models.JSONField(default=dict, blank=True)
    guardrails = models.JSONField(default=dict, blank=True)
    expiry_notices = models.JSONField(default=list, blank=True, help_text="Expiry notices already sent (\"24h\", \"1h\").")
    deleted_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="A protected environment's deletion waits for approval while this is set.")
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    # Protection rules (enforced by the releases and approvals flow).
    required_approvals = models.PositiveSmallIntegerField(default=0)
    prevent_self_approval = models.BooleanField(default=False)
    deployment_windows = models.JSONField(default=list, blank=True)
    freeze_until = models.DateTimeField(null=True, blank=True)
    freeze_reason = models.CharField(max_length=500, blank=True, default="")
    approver_groups = models.JSONField(default=list, blank=True, help_text="Group names; when set, an approver must be in one.")
    checklist = models.JSONField(default=list, blank=True, help_text="Items each approver ticks before approving.")
    promotion_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="promotes_to",
        help_text="A release must have succeeded there before it may be deployed here.",
    )
    replicas = models.PositiveSmallIntegerField(default=1, help_text="Replica count each service gets here (${replicas}).")
    rollback_requires_approval = models.BooleanField(default=False, help_text="Rollbacks wait for approvals too.")
    blue_green_keep_minutes = models.PositiveIntegerField(default=30, help_text="Blue-green: how long the old colour keeps running for a rollback.")
    webhook_url_encrypted = models.TextField(blank=True, default="", help_text="Slack-compatible webhook (its URL is a secret).")
    notify_emails = models.TextField(blank=True, default="", help_text="Extra addresses, comma-separated.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace"], name="unique_namespace_per_cluster"),
        ]

    def __str__(self):
        return self.slug

    @property
    def webhook_url(self):
        return crypto.decrypt(self.webhook_url_encrypted)

    @webhook_url.setter
    def webhook_url(self, url):
        self.webhook_url_encrypted = crypto.encrypt(url or "")

    @property
    def freeze(self):
        if self.freeze_until is None:
            return None
        return {"until": self.freeze_until, "reason": self.freeze_reason}


class EnvironmentTemplate(models.Model):
    """What a self-service environment gets: its tier and cluster, the guardrails Gantry applies to
    its namespace (ResourceQuota, LimitRange, NetworkPolicy, RoleBinding), what a requester may
    choose and within which bounds, the services deployed at creation, and whether it needs approval.
    The rules that read these fields live in ``environments.guardrails``."""

    name = models.SlugField(max_length=63, unique=True)
    description = models.TextField(blank=True, default="")
    tier = models.CharField(max_length=16, choices=TIER_CHOICES)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.PROTECT, related_name="templates",
                                help_text="Empty: the default cluster (the sandbox if there is one).")
    quota = models.JSONField(default=dict, blank=True, help_text="ResourceQuota spec.hard, e.g. {\"requests.cpu\": \"2\"}.")
    limit_range = models.JSONField(default=dict, blank=True,
                                   help_text="Per container: default, default_request, max, min, each {cpu, memory}.")
    network_policy = models.CharField(max_length=16, default="default-deny",
                                      choices=[("default-deny", "default-deny"), ("none", "none")])
    ingress_namespace = models.CharField(max_length=63, default="ingress-nginx",
                                         help_text="Namespace of the ingress controller allowed in through the NetworkPolicy.")
    ttl_hours = models.PositiveIntegerField(null=True, blank=True, help_text="Default time to live; empty: no expiry.")
    max_ttl_hours = models.PositiveIntegerField(null=True, blank=True, help_text="Longest time to live a requester may ask for.")
    requires_approval = models.BooleanField(default=False)
    required_approvals = models.PositiveSmallIntegerField(default=1, help_text="Approvals needed when approval applies.")
    parameters = models.JSONField(default=dict, blank=True,
                                  help_text="What a requester may set, with bounds: {\"cpu\": {\"min\": \"1\", \"max\": \"8\"}}.")
    services = models.JSONField(default=list, blank=True,
                                help_text="Deployed at creation: [{\"service\": \"web\", \"from_environment\": \"development\"}].")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class EnvironmentApproval(models.Model):
    """One approver's decision on an environment request (creation from a protected template, or
    the deletion of a protected environment). Who may decide is deployments.policies' rule."""

    CREATE, DELETE = "create", "delete"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="approvals")
    purpose = models.CharField(max_length=8, default=CREATE, choices=[(CREATE, CREATE), (DELETE, DELETE)])
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="environment_approvals")
    decision = models.CharField(max_length=8, choices=[("approve", "approve"), ("reject", "reject")])
    comment = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["environment", "purpose", "user"],
                                               name="one_decision_per_environment_request")]
