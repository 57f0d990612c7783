from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Gantry"

    def ready(self):
        from portal import metrics

        metrics.register()
