"""Saved verification rules that still hold the old seeded CPU/memory queries (the sandbox's own
``container_*_usage_ratio`` names) get the seeded queries on cAdvisor/kube-state-metrics names."""
from django.db import migrations

OLD = {
    "cpu": 'max(container_cpu_usage_ratio{namespace="${namespace}",deployment="${deployment}"})',
    "memory": 'max(container_memory_usage_ratio{namespace="${namespace}",deployment="${deployment}"})',
}


def forwards(apps, schema_editor):
    from deployments.monitoring.models import default_rules

    new = {rule["name"]: rule["query"] for rule in default_rules()}
    settings = apps.get_model("monitoring", "VerificationSettings")
    for row in settings.objects.all():
        rules = [{**rule, "query": new[rule["name"]]} if OLD.get(rule.get("name")) == rule.get("query") else rule
                 for rule in row.rules or []]
        if rules != row.rules:
            row.rules = rules
            row.save(update_fields=["rules"])


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_cell_workload_and_restarts")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
