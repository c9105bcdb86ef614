"""§2.1 of the API reference: JWT sign-in, who am I, refresh rotation, sign-out, token checks."""

import re
import uuid
from datetime import timedelta

import jwt
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Role
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PROTECTED = "/api/v1/appointments"

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
BAD_CREDENTIALS = "Invalid username or password"


@pytest.fixture(autouse=True)
def _roomy_auth_limit(settings):
    """These tests sign in many times; the 5/min limit itself is tested in test_rate_limits."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": 1000, "api": 1000}


@pytest.fixture
def documented_admin(clinic):
    """The user of the §2.1 example request."""
    return UserFactory(
        clinic=clinic, email="admin@clinic.com", role=Role.ADMIN, password="secure_password"
    )


def login(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password}, format="json")


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def signed_in(user) -> dict:
    response = login(APIClient(), user.username, DEFAULT_PASSWORD)
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def assert_unauthorized(response, message: str | None = None):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert TIMESTAMP.match(body["timestamp"])
    assert response["WWW-Authenticate"].startswith("Bearer")
    if message is not None:
        assert body["error"]["message"] == message


# --- Sign in ------------------------------------------------------------------------------


def test_login_with_the_documented_body_returns_the_documented_payload(documented_admin):
    response = APIClient().post(
        LOGIN, {"username": "admin@clinic.com", "password": "secure_password"}, format="json"
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is True
    assert TIMESTAMP.match(body["timestamp"])
    data = body["data"]
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == 3600
    assert data["user"]["id"] == documented_admin.pk
    assert data["user"]["username"] == "admin@clinic.com"
    assert data["user"]["role"] == "admin"
    assert isinstance(data["refresh_token"], str) and data["refresh_token"]
    # A real, signed JWT (header.payload.signature) that lives for expires_in seconds.
    assert data["access_token"].count(".") == 2
    claims = jwt.decode(data["access_token"], options={"verify_signature": False})
    assert str(claims["user_id"]) == str(documented_admin.pk)
    assert claims["token_type"] == "access"
    assert claims["exp"] - claims["iat"] == 3600
    # ...and it opens the API, as the "Using the Token" example does.
    assert bearer(data["access_token"]).get(PROTECTED).status_code == 200


def test_login_is_case_insensitive_on_the_email(documented_admin):
    response = login(APIClient(), "Admin@Clinic.com", "secure_password")
    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == documented_admin.pk


@pytest.mark.parametrize("case", ["wrong_password", "unknown_user", "inactive_user"])
def test_failed_logins_are_401_with_one_message(case, clinic):
    user = UserFactory(clinic=clinic, is_active=case != "inactive_user")
    username = "nobody@clinic.test" if case == "unknown_user" else user.username
    password = "not the password" if case == "wrong_password" else DEFAULT_PASSWORD

    response = login(APIClient(), username, password)

    # The same answer whatever was wrong: no way to learn which accounts exist or are active.
    assert_unauthorized(response, BAD_CREDENTIALS)
    assert "data" not in response.json()


def test_unknown_fields_in_the_login_body_are_refused(documented_admin):
    response = APIClient().post(
        LOGIN,
        {"username": "admin@clinic.com", "password": "secure_password", "role": "owner"},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "role" in error["details"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"username": "admin@clinic.com"},
        {"password": "secure_password"},
        ["not", "an", "object"],
    ],
)
def test_incomplete_or_malformed_login_bodies_are_400(payload, documented_admin):
    response = APIClient().post(LOGIN, payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_login_body_that_is_not_json_is_400():
    response = APIClient().post(LOGIN, data="{username: nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


# --- Who am I -----------------------------------------------------------------------------


def test_me_returns_the_signed_in_user(receptionist):
    tokens = signed_in(receptionist)
    response = bearer(tokens["access_token"]).get(ME)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["id"] == receptionist.pk
    assert body["data"]["username"] == receptionist.username
    assert body["data"]["role"] == "receptionist"
    assert body["data"]["clinic"]["id"] == receptionist.clinic_id


def test_me_needs_a_token():
    assert_unauthorized(APIClient().get(ME))


# --- Refresh rotation ------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_dies(receptionist):
    tokens = signed_in(receptionist)

    first = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert first.status_code == 200
    rotated = first.json()["data"]
    assert rotated["token_type"] == "bearer"
    assert rotated["expires_in"] == 3600
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["access_token"] != tokens["access_token"]
    assert bearer(rotated["access_token"]).get(ME).status_code == 200

    # The old refresh token was single-use.
    replay = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_unauthorized(replay)

    # The new one works (once).
    second = APIClient().post(REFRESH, {"refresh_token": rotated["refresh_token"]}, format="json")
    assert second.status_code == 200
    assert bearer(second.json()["data"]["access_token"]).get(ME).status_code == 200


@pytest.mark.parametrize("which", ["access_token", "garbage"])
def test_refresh_refuses_anything_but_a_refresh_token(which, receptionist):
    tokens = signed_in(receptionist)
    raw = tokens["access_token"] if which == "access_token" else "not.a.token"
    response = APIClient().post(REFRESH, {"refresh_token": raw}, format="json")
    assert_unauthorized(response)


def test_refresh_needs_the_field():
    response = APIClient().post(REFRESH, {}, format="json")
    assert response.status_code == 400
    assert "refresh_token" in response.json()["error"]["details"]


# --- Sign out --------------------------------------------------------------------------------


def test_logout_kills_both_the_access_and_the_refresh_token(receptionist):
    tokens = signed_in(receptionist)
    client = bearer(tokens["access_token"])
    assert client.get(ME).status_code == 200

    response = client.post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert response.status_code == 200
    assert response.json()["success"] is True

    assert_unauthorized(client.get(ME))
    assert_unauthorized(client.get(PROTECTED))
    refresh = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_unauthorized(refresh)


def test_logout_without_the_refresh_token_still_kills_it(receptionist):
    """The session id is revoked: the refresh token dies even when the client forgets it."""
    tokens = signed_in(receptionist)
    client = bearer(tokens["access_token"])

    assert client.post(LOGOUT, {}, format="json").status_code == 200

    assert_unauthorized(client.get(ME))
    refresh = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_unauthorized(refresh)


def test_logout_also_kills_tokens_rotated_from_the_same_login(receptionist):
    tokens = signed_in(receptionist)
    rotated = (
        APIClient()
        .post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
        .json()["data"]
    )

    assert bearer(tokens["access_token"]).post(LOGOUT, {}, format="json").status_code == 200

    assert_unauthorized(bearer(rotated["access_token"]).get(ME))
    refresh = APIClient().post(REFRESH, {"refresh_token": rotated["refresh_token"]}, format="json")
    assert_unauthorized(refresh)


def test_logout_leaves_the_users_other_logins_alone(receptionist):
    phone, laptop = signed_in(receptionist), signed_in(receptionist)

    assert bearer(phone["access_token"]).post(LOGOUT, {}, format="json").status_code == 200

    assert_unauthorized(bearer(phone["access_token"]).get(ME))
    assert bearer(laptop["access_token"]).get(ME).status_code == 200
    refresh = APIClient().post(REFRESH, {"refresh_token": laptop["refresh_token"]}, format="json")
    assert refresh.status_code == 200


def test_logout_needs_a_valid_token():
    assert_unauthorized(APIClient().post(LOGOUT, {}, format="json"))


def test_logout_refuses_unknown_fields(receptionist):
    tokens = signed_in(receptionist)
    response = bearer(tokens["access_token"]).post(LOGOUT, {"everywhere": True}, format="json")
    assert response.status_code == 400
    # Refused, so not signed out.
    assert bearer(tokens["access_token"]).get(ME).status_code == 200


# --- What a Bearer token must be -----------------------------------------------------------------


def _session_tokens(user) -> tuple[RefreshToken, str]:
    refresh = RefreshToken.for_user(user)
    refresh["sid"] = uuid.uuid4().hex
    return refresh, str(refresh.access_token)


def test_a_refresh_token_is_not_an_access_token(receptionist):
    tokens = signed_in(receptionist)
    assert_unauthorized(bearer(tokens["refresh_token"]).get(ME))
    assert_unauthorized(bearer(tokens["refresh_token"]).get(PROTECTED))


def test_an_expired_access_token_is_refused(receptionist):
    refresh, fresh = _session_tokens(receptionist)
    assert bearer(fresh).get(ME).status_code == 200  # the same construction, unexpired, works

    expired = refresh.access_token
    expired.set_exp(from_time=timezone.now() - timedelta(hours=2))  # exp: an hour ago
    assert expired["exp"] < timezone.now().timestamp()

    assert_unauthorized(bearer(str(expired)).get(ME))


def test_a_tampered_signature_is_refused(receptionist):
    _, token = _session_tokens(receptionist)
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    tampered = f"{header}.{payload}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"
    assert tampered != token

    assert_unauthorized(bearer(tampered).get(ME))


def test_changed_claims_under_the_old_signature_are_refused(receptionist, admin_user):
    _, token = _session_tokens(receptionist)
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["user_id"] = admin_user.pk  # try to become the admin
    forged_payload = jwt.encode(claims, "k" * 32, algorithm="HS256").split(".")[1]

    assert_unauthorized(bearer(f"{header}.{forged_payload}.{signature}").get(ME))


def test_a_token_signed_with_another_key_is_refused(receptionist):
    _, token = _session_tokens(receptionist)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "another-key-that-is-long-enough-for-hs256!", algorithm="HS256")

    assert_unauthorized(bearer(forged).get(ME))


def test_an_unsigned_token_is_refused(receptionist):
    _, token = _session_tokens(receptionist)
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")

    assert_unauthorized(bearer(unsigned).get(ME))


def test_a_token_of_a_deactivated_user_is_refused(receptionist):
    tokens = signed_in(receptionist)
    receptionist.is_active = False
    receptionist.save(update_fields=["is_active"])

    assert_unauthorized(bearer(tokens["access_token"]).get(ME))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer two tokens",
        "Basic YWRtaW46c2VjcmV0",
        "garbage",
    ],
)
def test_missing_or_garbage_authorization_is_401_with_www_authenticate(header):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)

    for path in (ME, PROTECTED):
        assert_unauthorized(client.get(path))


# --- Refresh for an account that changed --------------------------------------------------------


def test_refresh_for_a_deactivated_user_is_refused(receptionist):
    tokens = signed_in(receptionist)
    receptionist.is_active = False
    receptionist.save(update_fields=["is_active"])

    response = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_unauthorized(response)


def test_refresh_for_a_deleted_user_is_refused(clinic):
    user = UserFactory(clinic=clinic)
    tokens = signed_in(user)
    user.delete()

    response = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_unauthorized(response)
    assert_unauthorized(bearer(tokens["access_token"]).get(ME))


def test_an_expired_refresh_token_is_refused(receptionist):
    refresh, _ = _session_tokens(receptionist)
    refresh.set_exp(from_time=timezone.now() - timedelta(days=30))

    response = APIClient().post(REFRESH, {"refresh_token": str(refresh)}, format="json")
    assert_unauthorized(response)


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="REDIS_URL is not set")
def test_sign_out_holds_when_redis_is_unreachable(settings, receptionist):
    """Revocations are recorded in the database; the cache only speeds the check up."""
    tokens = signed_in(receptionist)
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    options = {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": dead,
            "OPTIONS": {**settings.CACHES["default"].get("OPTIONS", {}), **options},
        }
    }
    client = bearer(tokens["access_token"])
    assert client.get(ME).status_code == 200

    assert client.post(LOGOUT, {}, format="json").status_code == 200

    assert_unauthorized(client.get(ME))
    refresh = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_unauthorized(refresh)


# --- The signed-in user is cached between requests, and dropped when it changes ---------------


def test_the_signed_in_user_is_read_from_the_cache_after_the_first_request(
    receptionist, django_assert_num_queries
):
    api = bearer(signed_in(receptionist)["access_token"])
    assert api.get(ME).status_code == 200
    with django_assert_num_queries(0):  # neither the user nor the session row
        assert api.get(ME).status_code == 200


def test_a_deactivated_user_is_refused_at_the_next_request(receptionist):
    api = bearer(signed_in(receptionist)["access_token"])
    assert api.get(ME).status_code == 200
    receptionist.is_active = False
    receptionist.save(update_fields=["is_active"])
    assert_unauthorized(api.get(ME))


def test_a_deleted_user_is_refused_at_the_next_request(receptionist):
    api = bearer(signed_in(receptionist)["access_token"])
    assert api.get(ME).status_code == 200
    receptionist.delete()
    assert_unauthorized(api.get(ME))


def test_a_clinic_change_is_seen_by_its_signed_in_members(receptionist):
    api = bearer(signed_in(receptionist)["access_token"])
    assert api.get(ME).json()["data"]["clinic"]["time_zone"] == "Asia/Kolkata"
    clinic = receptionist.clinic
    clinic.time_zone = "Asia/Dubai"
    clinic.save(update_fields=["time_zone"])
    assert api.get(ME).json()["data"]["clinic"]["time_zone"] == "Asia/Dubai"


def test_without_the_cache_the_database_answers(receptionist, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from accounts import tokens

    api = bearer(signed_in(receptionist)["access_token"])

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr(tokens.cache, "get_many", unreachable)
    assert api.get(ME).json()["data"]["id"] == receptionist.pk
    receptionist.is_active = False
    receptionist.save(update_fields=["is_active"])
    assert_unauthorized(api.get(ME))
