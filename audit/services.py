"""Writing the audit trail: one durable ``AuditEntry`` row per request, before the answer.

Every read of patient data writes a row, so the write is on the hot path of the API's
reads. Through ``AuditEntry.objects.create`` it cost ~1 ms of CPU (a model instance,
``save()``'s signals and checks, the INSERT compiled each time) for a ~0.2 ms INSERT.
Here the INSERT is built once per database from the model's own fields and run through
the same connection (so inside the request's transaction, if any, and seen by query
counts); each value goes through its field's ``get_db_prep_save``, exactly as ``save()``
would send it. ``AuditEntry`` has no save signals or overridden ``save()`` to skip.
"""

from django.db import connections, router
from django.utils import timezone

from audit.models import AuditEntry

#: The columns written, as model field names (``id`` is the database's).
_FIELDS = (
    "timestamp",
    "user",
    "clinic",
    "resource",
    "action",
    "object_ids",
    "request_id",
    "ip_address",
    "path",
)
_inserts: dict[str, tuple[str, tuple]] = {}


def _insert(connection) -> tuple[str, tuple]:
    """``INSERT INTO audit_auditentry (...) VALUES (%s, ...)`` and its fields, for
    ``connection``'s backend."""
    found = _inserts.get(connection.vendor)
    if found is None:
        fields = tuple(AuditEntry._meta.get_field(name) for name in _FIELDS)
        quote = connection.ops.quote_name
        sql = "INSERT INTO {} ({}) VALUES ({})".format(
            quote(AuditEntry._meta.db_table),
            ", ".join(quote(field.column) for field in fields),
            ", ".join(["%s"] * len(fields)),
        )
        found = _inserts[connection.vendor] = (sql, fields)
    return found


def record_access(request, resource: str, action: str, object_ids) -> None:
    """Writes one audit entry for this request's access to patient data."""
    if not isinstance(object_ids, list | tuple):
        object_ids = [object_ids]
    user = request.user if request.user.is_authenticated else None
    values = (
        timezone.now(),  # auto_now_add
        user.pk if user is not None else None,
        getattr(user, "clinic_id", None),
        resource,
        action,
        list(object_ids),
        getattr(request, "request_id", "") or "",
        request.META.get("REMOTE_ADDR") or None,
        request.get_full_path()[:300],
    )
    connection = connections[router.db_for_write(AuditEntry)]
    sql, fields = _insert(connection)
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
