"""JWT sessions: issuing, refreshing and revoking (simplejwt underneath).

Every login gets a session id (``sid``) carried by its refresh token and by each
access token made from it, across rotations. Signing out revokes the ``sid``, so
both kinds stop working at once; simplejwt's blacklist makes a rotated refresh
token single-use.
"""

import contextlib
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import RevokedSession, User
from vaani.common.cache import get_many_and_count

_CACHE_PREFIX = "revoked-sid:"
logger = logging.getLogger(__name__)
# What an unreachable Redis cache raises (django-redis wraps most of it).
_CACHE_UNAVAILABLE = (ConnectionInterrupted, RedisError, OSError)


def issue_tokens(user: User) -> dict:
    refresh = RefreshToken.for_user(user)
    refresh["sid"] = uuid.uuid4().hex
    return token_payload(user, refresh)


def token_payload(user: User, refresh: RefreshToken) -> dict:
    return {
        "access_token": str(refresh.access_token),
        "token_type": "bearer",
        "expires_in": settings.ACCESS_TOKEN_LIFETIME_SECONDS,
        "refresh_token": str(refresh),
        "user": user_payload(user),
    }


def user_payload(user: User) -> dict:
    clinic = user.clinic
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "name": user.get_full_name(),
        "role": user.role,
        "clinic": {"id": clinic.pk, "name": clinic.name, "time_zone": clinic.time_zone}
        if clinic
        else None,
    }


def rotate_refresh_token(raw_refresh: str) -> tuple[str, str]:
    """New (access, refresh) for a valid, unused, unrevoked refresh token.

    Raises simplejwt's TokenError/InvalidToken otherwise (answered as 401).
    """
    token = RefreshToken(raw_refresh)  # signature, expiry, type and blacklist checked
    from rest_framework_simplejwt.exceptions import InvalidToken

    if is_session_revoked(token.get("sid")):
        raise InvalidToken("This session has been signed out")
    # simplejwt's serializer does User.objects.get(): a deleted user would be a 500.
    if not User.objects.filter(pk=token.get("user_id"), is_active=True).exists():
        raise InvalidToken("User not found or inactive")
    serializer = TokenRefreshSerializer(data={"refresh": raw_refresh})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["access"], serializer.validated_data["refresh"]


def revoke_session(*, user: User, sid: str | None, raw_refresh: str | None = None) -> None:
    if sid:
        lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
        RevokedSession.objects.get_or_create(
            sid=sid, defaults={"user": user, "expires_at": timezone.now() + lifetime}
        )
        # The row above is the record; the cache only speeds up the checks.
        with contextlib.suppress(*_CACHE_UNAVAILABLE):
            cache.set(_CACHE_PREFIX + sid, True, timeout=int(lifetime.total_seconds()))
    if raw_refresh:
        # An already expired, invalid or blacklisted refresh token is fine at logout.
        with contextlib.suppress(TokenError):
            RefreshToken(raw_refresh).blacklist()


def is_session_revoked(sid: str | None) -> bool:
    """Cache-first; the database answers once per session and process, then the cache."""
    if not sid:
        return False
    try:
        cached = cache.get(_CACHE_PREFIX + sid)
    except _CACHE_UNAVAILABLE:  # cache (Redis) unreachable: ask the database, the record
        logger.warning("Session revocation checked without the cache", exc_info=True)
        return RevokedSession.objects.filter(sid=sid).exists()
    return _revoked_from(cached, sid)


def _revoked_from(cached: bool | None, sid: str) -> bool:
    """The cached revocation flag, or the database's answer, cached for next time."""
    if cached is None:
        cached = RevokedSession.objects.filter(sid=sid).exists()
        lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] + timedelta(minutes=1)
        # A "not revoked" answer is cached briefly only: logout overwrites it anyway.
        with contextlib.suppress(*_CACHE_UNAVAILABLE):
            cache.set(
                _CACHE_PREFIX + sid, cached, timeout=int(lifetime.total_seconds()) if cached else 60
            )
    return bool(cached)


# --- The user behind an access token -------------------------------------------------------
# Every API request needs the signed-in user and their clinic.  Read from the database,
# that row alone was ~40% of the CPU of a small authenticated request (query building
# and model loading), so it is cached next to the session's revocation flag and both
# come back in one round trip.  Saving a user or a clinic drops the entries concerned
# (see accounts/signals.py); the timeout bounds how long a change made behind the ORM's
# back (a raw UPDATE) could go unseen.
_USER_CACHE_PREFIX = "auth-user:v1:"  # bump when User or Clinic change shape (pickles)
USER_CACHE_SECONDS = 300


def user_cache_key(user_id) -> str:
    return f"{_USER_CACHE_PREFIX}{user_id}"


def forget_cached_users(user_ids) -> None:
    with contextlib.suppress(*_CACHE_UNAVAILABLE):
        cache.delete_many([user_cache_key(pk) for pk in user_ids])


def session_user(sid: str | None, user_id) -> User:
    """The active user an access token speaks for, if its session is still signed in.

    Raises ``InvalidToken`` (answered as 401) for a signed-out session or a deleted or
    inactive user.
    """
    return session_user_counted(sid, user_id)


def session_user_counted(sid: str | None, user_id, counter=None, on_count=None) -> User:
    """``session_user``, counting this request in ``counter`` (``(key, timeout)`` of a
    rate-limit window) in the same cache round trip.

    ``on_count(count)`` is called with the window's count as soon as it is known, before
    the session or user can be refused; it is not called when the count could not be
    taken with the lookup (a cache without that, or none): the caller counts then.
    """
    from rest_framework_simplejwt.exceptions import InvalidToken

    if user_id is None:
        raise InvalidToken("Token contained no recognizable user identification")
    user_key = user_cache_key(user_id)
    keys = [user_key] + ([_CACHE_PREFIX + sid] if sid else [])
    try:
        found, count = get_many_and_count(keys, counter)
    except _CACHE_UNAVAILABLE:  # no cache: the database answers both
        logger.warning("Signed-in user loaded without the cache", exc_info=True)
        if sid and RevokedSession.objects.filter(sid=sid).exists():
            raise InvalidToken("This session has been signed out") from None
        user = _load_user(user_id)
    else:
        if count is not None and on_count is not None:
            on_count(count)
        if sid and _revoked_from(found.get(_CACHE_PREFIX + sid), sid):
            raise InvalidToken("This session has been signed out")
        user = found.get(user_key)
        if user is None:
            user = _load_user(user_id)
            if user is not None:
                with contextlib.suppress(*_CACHE_UNAVAILABLE):
                    cache.set(user_key, user, timeout=USER_CACHE_SECONDS)
    if user is None or not user.is_active:
        raise InvalidToken("User not found or inactive")
    return user


def _load_user(user_id) -> User | None:
    return User.objects.select_related("clinic").filter(pk=user_id).first()
