from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "environments.backups"
    label = "backups"
    verbose_name = "Backups and restore drills"
