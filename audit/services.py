from audit.models import AuditEntry


def record_access(request, resource: str, action: str, object_ids) -> AuditEntry:
    """Writes one audit entry for this request's access to patient data."""
    if not isinstance(object_ids, list | tuple):
        object_ids = [object_ids]
    user = request.user if request.user.is_authenticated else None
    return AuditEntry.objects.create(
        user=user,
        clinic_id=getattr(user, "clinic_id", None),
        resource=resource,
        action=action,
        object_ids=list(object_ids),
        request_id=getattr(request, "request_id", "") or "",
        ip_address=request.META.get("REMOTE_ADDR") or None,
        path=request.get_full_path()[:300],
    )
