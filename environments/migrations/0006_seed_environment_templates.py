from django.db import migrations


def seed(apps, schema_editor):
    from environments.template_defaults import seed_templates

    seed_templates(apps.get_model("environments", "EnvironmentTemplate"))


class Migration(migrations.Migration):
    dependencies = [("environments", "0005_environment_templates")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
