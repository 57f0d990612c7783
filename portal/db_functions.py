"""SQL functions Django does not ship, each written for both databases Gantry runs on: PostgreSQL, and
the demo's SQLite."""
from django.db.models import BigIntegerField, Func, IntegerField


class Epoch(Func):
    """A timestamp as whole seconds since 1970 (cheaper to read by the thousand than datetimes)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::bigint"
    output_field = BigIntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)", **extra)


class JsonArrayLength(Func):
    """How many items a JSON array column holds."""

    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="json_array_length", **extra)
