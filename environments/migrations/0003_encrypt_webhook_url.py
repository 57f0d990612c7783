"""Webhook URLs carry their secret in the path: store them encrypted like cluster credentials."""
from django.db import migrations, models


def encrypt_existing(apps, schema_editor):
    from portal import crypto

    Environment = apps.get_model("environments", "Environment")
    for env in Environment.objects.exclude(webhook_url=""):
        env.webhook_url_encrypted = crypto.encrypt(env.webhook_url)
        env.save(update_fields=["webhook_url_encrypted"])


class Migration(migrations.Migration):

    dependencies = [
        ("environments", "0002_environment_approver_groups_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="webhook_url_encrypted",
            field=models.TextField(blank=True, default="", help_text="Slack-compatible webhook (its URL is a secret)."),
        ),
        migrations.RunPython(encrypt_existing, migrations.RunPython.noop),
        migrations.RemoveField(model_name="environment", name="webhook_url"),
    ]
