"""The append-only trigger lets exactly one DELETE through: the archiving job's.

A DELETE passes only inside a transaction that set `gantry.audit_archiving` (SET LOCAL, so it ends
with the transaction) and only for events an ArchiveSegment row, written in that same transaction
after the segment was stored and verified, covers. UPDATE is always refused.
"""
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION gantry_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('gantry.audit_archiving', true) = 'on'
       AND EXISTS (SELECT 1 FROM audit_archivesegment s WHERE OLD.seq BETWEEN s.first_seq AND s.last_seq) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused on audit_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

STRICT = """
CREATE OR REPLACE FUNCTION gantry_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on audit_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STRICT, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_archive_segment")]
    operations = [migrations.RunPython(forwards, backwards)]
