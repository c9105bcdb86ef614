"""Who may do what: membership of a clinic, then the member's role."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import Role


class IsClinicMember(BasePermission):
    """Signed in, active, and a member of a clinic (every clinic API needs one)."""

    message = "Your account is not a member of a clinic."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_active and user.clinic_id is not None


class HasClinicRole(IsClinicMember):
    """Membership plus a role allowed for the request's kind.

    Views name ``read_roles`` and ``write_roles`` (sets of ``Role``); reads are the
    safe methods. Defaults: every member reads, owners/admins/receptionists write.
    """

    message = "Your role does not allow this action."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS:
            allowed = getattr(view, "read_roles", Role.ALL)
        else:
            allowed = getattr(view, "write_roles", Role.FRONT_DESK)
        return request.user.role in allowed


class IsClinicManager(IsClinicMember):
    """Owners and admins only (webhooks, metrics); any member may still ask OPTIONS."""

    message = "Only the clinic's owners and admins may do this."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        return request.method == "OPTIONS" or request.user.role in Role.MANAGERS
