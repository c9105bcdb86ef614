"""Cached signed-in users (``accounts.tokens.session_user``) are dropped when they change."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.tokens import forget_cached_users
from clinic.models import Clinic


def _forget(user_ids: list) -> None:
    forget_cached_users(user_ids)
    # Again once the change is committed: a request that read the old row before the
    # commit may have cached it in between.
    transaction.on_commit(lambda: forget_cached_users(user_ids))


@receiver([post_save, post_delete], sender=User, dispatch_uid="accounts-forget-cached-user")
def forget_user(sender, instance, **kwargs):
    _forget([instance.pk])


@receiver([post_save, post_delete], sender=Clinic, dispatch_uid="accounts-forget-clinic-users")
def forget_clinic_users(sender, instance, **kwargs):
    _forget(list(User.objects.filter(clinic_id=instance.pk).values_list("pk", flat=True)))
