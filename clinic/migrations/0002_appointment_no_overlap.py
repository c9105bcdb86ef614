"""Refuse overlapping appointments of one doctor in the database itself (PostgreSQL).

An exclusion constraint over (doctor, [scheduled_time, end_time)) for rows that
are not cancelled: two concurrent bookings of one slot cannot both commit, whoever
writes them (API, admin, a script). SQLite has no such constraint; there the
booking transaction takes the write lock when it begins (see settings).
"""

from django.db import migrations

CONSTRAINT = "appointment_no_overlap"


def add_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"""
        ALTER TABLE clinic_appointment ADD CONSTRAINT {CONSTRAINT}
        EXCLUDE USING gist (
            doctor_id WITH =,
            tstzrange(scheduled_time, end_time, '[)') WITH &&
        ) WHERE (status <> 'cancelled')
        """
    )


def drop_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE clinic_appointment DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("clinic", "0001_initial")]

    operations = [migrations.RunPython(add_constraint, drop_constraint)]
