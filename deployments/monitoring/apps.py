from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "deployments.monitoring"
    label = "monitoring"
    verbose_name = "Live health and verification"
