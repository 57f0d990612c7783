from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "environments"

    def ready(self):
        from . import metrics  # models are importable only once the registry is ready

        metrics.register()
