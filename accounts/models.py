"""People who sign in: clinic staff, each a member of one clinic with a role."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    RECEPTIONIST = "receptionist", "Receptionist"
    DOCTOR = "doctor", "Doctor"


Role.ALL = frozenset(Role.values)
Role.MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
Role.FRONT_DESK = frozenset({Role.OWNER, Role.ADMIN, Role.RECEPTIONIST})


class StaffUserManager(UserManager):
    def create_user(self, username=None, email=None, password=None, **extra):
        # Staff sign in with their e-mail address; it is also the username.
        username = username or email
        return super().create_user(username, email or username, password, **extra)


class User(AbstractUser):
    """A member of a clinic. ``username`` is the e-mail address staff sign in with."""

    email = models.EmailField("email address", unique=True)
    clinic = models.ForeignKey(
        "clinic.Clinic",
        on_delete=models.PROTECT,
        related_name="members",
        null=True,
        blank=True,
        help_text="The clinic whose data this user works with. Empty for platform operators.",
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.RECEPTIONIST)

    objects = StaffUserManager()

    REQUIRED_FIELDS = ["email"]

    def __str__(self):
        return self.email or self.username


class RevokedSession(models.Model):
    """A signed-out login: every access and refresh token carrying its ``sid`` is dead.

    Tokens are stateless, so signing out records the session id until the last
    token of that login would have expired anyway.
    """

    sid = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    revoked_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.user} {self.sid}"
