from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "deployments.compliance"
    label = "compliance"
    verbose_name = "Compliance: evidence packs and reports"
