from django.db import models

STATUSES = ("healthy", "progressing", "degraded", "down", "unknown")
STATUS_CHOICES = [(s, s) for s in STATUSES]


class CellHealth(models.Model):
    """The current health of one service in one environment: one cell of the board.

    Written only by the probe (monitoring.probing); ``since`` is when the status last changed.
    """

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="cells")
    service = models.ForeignKey("deployments.Service", on_delete=models.CASCADE, related_name="cells")
    deployment = models.ForeignKey("deployments.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="The live deployment when last probed.")
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default="unknown")
    reason = models.CharField(max_length=500, blank=True, default="")
    since = models.DateTimeField()
    checked_at = models.DateTimeField()
    consecutive_failures = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    color = models.CharField(max_length=8, blank=True, default="")
    ready_replicas = models.PositiveIntegerField(default=0)
    desired_replicas = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=0, help_text="Bumped on every visible change (live board updates).")
    changed_at = models.DateTimeField(db_index=True, help_text="When the board last had to redraw this cell.")
    workload = models.JSONField(default=dict, blank=True,
                                help_text="Where the live deployment runs, read once from its manifests (deployments.health.Workload).")
    restarts = models.PositiveIntegerField(null=True, blank=True, help_text="Container restarts of the live pods when last probed.")
    restart_log = models.JSONField(default=list, blank=True,
                                   help_text="[epoch seconds, restarts seen] within the restart window (monitoring.restarts).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "service"], name="one_cell_per_service_env")]

    def __str__(self):
        return f"service {self.service_id} in environment {self.environment_id}: {self.status}"


class HealthCheck(models.Model):
    """One probe's outcome. Kept 48 hours (pruned by periodic work)."""

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey("deployments.Service", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=STATUS_CHOICES)
    ok = models.BooleanField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["environment", "service", "at"]), models.Index(fields=["at"])]

    def __str__(self):
        return f"probe of service {self.service_id} in environment {self.environment_id} at {self.at}: {self.status}"


class HealthMinute(models.Model):
    """Per-minute aggregate of the probes of one cell. Kept 30 days."""

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey("deployments.Service", on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    checks = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    latency_ms_sum = models.PositiveBigIntegerField(default=0)
    latency_ms_max = models.PositiveIntegerField(default=0)
    worst = models.CharField(max_length=12, choices=STATUS_CHOICES, default="healthy")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "service", "minute"], name="one_aggregate_per_minute")]
        indexes = [models.Index(fields=["minute"])]

    def __str__(self):
        return f"service {self.service_id} in environment {self.environment_id}, minute {self.minute}"


class HealthChange(models.Model):
    """A status change of a cell, with its reason: one row per change, never one per probe."""

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey("deployments.Service", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    from_status = models.CharField(max_length=12, choices=STATUS_CHOICES)
    to_status = models.CharField(max_length=12, choices=STATUS_CHOICES)
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["environment", "service", "at"])]

    def __str__(self):
        return f"service {self.service_id} in environment {self.environment_id}: {self.from_status} to {self.to_status}"


def default_rules():
    """The rules users' plans ask for (issue #9): error rate, p95 latency, CPU, memory.

    ``${namespace}``, ``${service}`` and ``${deployment}`` (the Kubernetes Deployment serving the new
    release, e.g. ``web-green``) are filled in per verification. CPU and memory are the busiest
    pod's use against its limits, from the names cAdvisor (``container_*``) and kube-state-metrics
    (``kube_pod_container_resource_limits``) expose; the pod regex takes the Deployment's pods
    (``<deployment>-<replicaset hash>-<suffix>``) and not those of ``<deployment>-green``.
    """
    selector = 'namespace="${namespace}",deployment="${deployment}"'
    pods = 'namespace="${namespace}",pod=~"${deployment}-[a-z0-9]+-[a-z0-9]+"'
    containers = f'{pods},container!="",container!="POD"'
    return [
        {"name": "error rate", "op": ">", "threshold": 0.05, "for_seconds": 300,
         "query": f'sum(rate(http_requests_total{{{selector},code=~"5.."}}[1m])) / sum(rate(http_requests_total{{{selector}}}[1m]))'},
        {"name": "p95 latency", "op": ">", "threshold": 2.0, "for_seconds": 180,
         "query": f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{selector}}}[1m])))"},
        {"name": "cpu", "op": ">", "threshold": 0.9, "for_seconds": 300,
         "query": f"max(sum by (pod) (rate(container_cpu_usage_seconds_total{{{containers}}}[1m])) "
                  f'/ sum by (pod) (kube_pod_container_resource_limits{{{pods},resource="cpu"}}))'},
        {"name": "memory", "op": ">", "threshold": 0.95, "for_seconds": 180,
         "query": f"max(sum by (pod) (container_memory_working_set_bytes{{{containers}}}) "
                  f'/ sum by (pod) (kube_pod_container_resource_limits{{{pods},resource="memory"}}))'},
    ]


class VerificationSettings(models.Model):
    """An environment's verification after each deployment (API ``verification``)."""

    environment = models.OneToOneField("environments.Environment", on_delete=models.CASCADE, related_name="verification_settings")
    window_seconds = models.PositiveIntegerField(default=300)
    probe_interval_seconds = models.PositiveIntegerField(default=15)
    failure_threshold = models.PositiveSmallIntegerField(default=3)
    auto_rollback = models.BooleanField(default=True)
    prometheus_url = models.URLField(max_length=300, blank=True, default="")
    rules = models.JSONField(default=default_rules, blank=True)
    unknown_rule = models.CharField(max_length=8, choices=[("fail", "fail"), ("ignore", "ignore")], default="fail",
                                    help_text="What a rule Prometheus could not answer does to the verification.")
    require_verified_promotion = models.BooleanField(
        default=False, help_text="Go/no-go: a release must have passed verification in promotion_from first.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"verification settings of environment {self.environment_id}"


class Verification(models.Model):
    """The verification window of one deployment: probes and rules, then passed or failed."""

    STATES = ("pending", "running", "passed", "failed", "skipped")

    deployment = models.OneToOneField("deployments.Deployment", on_delete=models.CASCADE, related_name="verification")
    state = models.CharField(max_length=8, choices=[(s, s) for s in STATES], default="pending", db_index=True)
    reason = models.CharField(max_length=1000, blank=True, default="")
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    next_check_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    probes = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_probe = models.CharField(max_length=300, blank=True, default="")
    rules = models.JSONField(default=list, blank=True, help_text="Each rule with its last value, state and since when it is violated.")
    settings_snapshot = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"verification of deployment #{self.deployment_id}: {self.state}"


class AutoRollback(models.Model):
    """Gantry's automatic rollback of a deployment. Unique per deployment: it happens at most once."""

    deployment = models.OneToOneField("deployments.Deployment", on_delete=models.CASCADE, related_name="auto_rollback")
    rollback = models.OneToOneField("deployments.Deployment", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="auto_rollback_of")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=1000)
    outcome = models.CharField(max_length=16, choices=[("started", "started"), ("no_target", "no target"),
                                                       ("superseded", "superseded")])

    def __str__(self):
        return f"automatic rollback of deployment #{self.deployment_id}: {self.outcome}"
