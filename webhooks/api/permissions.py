from accounts.models import Role
from vaani.common.permissions import IsClinicMember


class IsClinicManager(IsClinicMember):
    """Owners and admins only; any member may still ask OPTIONS (it shows no data)."""

    message = "Only the clinic's owners and admins may do this."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        return request.method == "OPTIONS" or request.user.role in Role.MANAGERS
