"""The chain's key fingerprint on each event, and TRUNCATE refused like UPDATE and DELETE (PostgreSQL)."""
from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION gantry_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    -- The test suite's own flush between tests sets this on its connections; production never does.
    IF current_setting('gantry.audit_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: TRUNCATE refused on audit_auditevent'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_no_truncate ON audit_auditevent;
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION gantry_audit_no_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_no_truncate ON audit_auditevent;
DROP FUNCTION IF EXISTS gantry_audit_no_truncate();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_keyset_indexes")]
    operations = [
        migrations.AddField(
            model_name="auditevent", name="key_id",
            field=models.CharField(blank=True, default="", max_length=16,
                                   help_text="Fingerprint of the GANTRY_AUDIT_KEY whose HMAC is `hash` (empty: plain SHA-256)."),
        ),
        migrations.RunPython(forwards, backwards),
    ]
