"""§11 of the API reference: per-category limits, X-RateLimit-* headers, the 429 body.

Windows are fixed calendar minutes, so every test that counts starts in a window with
time to spare (``fresh_window``) instead of patching the clock.
"""

import time

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from clinic.tests.factories import AppointmentFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
APPOINTMENTS = "/api/v1/appointments"
HEALTH = "/api/v1/admin/health"
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
TOO_MANY = "Too many requests. Please try again later."


@pytest.fixture
def fresh_window():
    """Waits (at most ~15 s, rarely) so the test's requests all fall in one window."""
    window = django_settings.RATE_LIMIT_WINDOW_SECONDS
    left = window - time.time() % window
    if left < 15:
        time.sleep(left + 0.05)


def limit_headers(response) -> tuple[int, int, int]:
    for name in HEADERS:
        assert name in response, f"{name} missing on a {response.status_code}"
    return tuple(int(response[name]) for name in HEADERS)


def assert_rate_limited(response, *, limit: int):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"] == {
        "code": "RATE_LIMIT_EXCEEDED",
        "message": TOO_MANY,
        "details": {
            "limit": limit,
            "window_seconds": 60,
            "retry_after": body["error"]["details"]["retry_after"],
        },
    }
    retry_after = body["error"]["details"]["retry_after"]
    assert isinstance(retry_after, int) and 1 <= retry_after <= 60
    assert response["Retry-After"] == str(retry_after)
    header_limit, remaining, reset = limit_headers(response)
    assert (header_limit, remaining) == (limit, 0)
    # The reset moment and the advice agree (to the second).
    assert abs((reset - time.time()) - retry_after) <= 2


def _login(client, username, password="wrong", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, format="json", **extra)


# --- Headers on every response -------------------------------------------------------------------


def test_headers_on_success_and_on_every_kind_of_refusal(make_client, clinic, doctor_user, api):
    now = time.time()
    anonymous = APIClient()
    garbage = APIClient()
    garbage.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    responses = {
        "200": api.get(APPOINTMENTS),
        "400": api.get(APPOINTMENTS, {"limit": "many"}),
        "401 (no token)": anonymous.get(APPOINTMENTS),
        "401 (bad token)": garbage.get(APPOINTMENTS),
        "403": make_client(doctor_user).post(APPOINTMENTS, {}, format="json"),
        "404": api.get(f"{APPOINTMENTS}/987654"),
        "405": api.post(f"{APPOINTMENTS}/available-slots", {}, format="json"),
        "login 401": _login(anonymous, "nobody@clinic.test"),
        "login 400": anonymous.post(LOGIN, {"user": "x"}, format="json"),
        "health 200": anonymous.get(HEALTH),
    }
    for label, response in responses.items():
        expected = label.split()[-1].strip("()")
        if expected.isdigit():
            assert response.status_code == int(expected), (label, response.content)
        limit, remaining, reset = limit_headers(response)
        assert 0 <= remaining < limit, label
        assert now < reset <= now + 61, label


def test_remaining_counts_down_and_limit_names_the_category(api, fresh_window):
    first = limit_headers(api.get(APPOINTMENTS))
    second = limit_headers(api.get(APPOINTMENTS))
    assert first[0] == second[0] == 60  # Appointment API: 60 a minute
    assert second[1] == first[1] - 1
    assert first[2] == second[2]  # same window, same reset

    health = limit_headers(APIClient().get(HEALTH))
    assert health[0] == 30  # Public API: 30 a minute
    login = limit_headers(_login(APIClient(), "nobody@clinic.test"))
    assert login[0] == 5  # Authentication: 5 a minute


# --- Authentication: 5 a minute ---------------------------------------------------------------


def test_sixth_login_in_a_minute_is_429_with_the_documented_body(receptionist, fresh_window):
    client = APIClient()
    remaining = []
    for attempt in range(5):
        password = DEFAULT_PASSWORD if attempt == 4 else "wrong"
        response = _login(client, receptionist.username, password)
        assert response.status_code == (200 if attempt == 4 else 401)
        remaining.append(limit_headers(response)[1])
    assert remaining == [4, 3, 2, 1, 0]

    # Even the right password is refused now.
    sixth = _login(client, receptionist.username, DEFAULT_PASSWORD)
    assert_rate_limited(sixth, limit=5)
    assert "data" not in sixth.json()


def test_login_limit_is_per_caller_address(receptionist, fresh_window):
    client = APIClient()
    for _ in range(5):
        _login(client, receptionist.username, REMOTE_ADDR="203.0.113.7")
    assert_rate_limited(_login(client, receptionist.username, REMOTE_ADDR="203.0.113.7"), limit=5)

    other = _login(client, receptionist.username, DEFAULT_PASSWORD, REMOTE_ADDR="203.0.113.8")
    assert other.status_code == 200


def test_refresh_counts_against_the_auth_limit(receptionist, fresh_window):
    client = APIClient()
    for _ in range(5):
        response = client.post("/api/v1/auth/refresh", {"refresh_token": "x"}, format="json")
        assert response.status_code == 401
    assert_rate_limited(_login(client, receptionist.username, DEFAULT_PASSWORD), limit=5)


# --- Appointment API: 60 a minute, per user ----------------------------------------------------


def test_appointments_api_limit(settings, api, clinic, fresh_window):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 3}
    appointment = AppointmentFactory(clinic=clinic)

    assert api.get(APPOINTMENTS).status_code == 200
    assert api.get(f"{APPOINTMENTS}/{appointment.pk}").status_code == 200
    assert api.get(f"{APPOINTMENTS}/987654").status_code == 404  # refusals count too

    assert_rate_limited(api.get(APPOINTMENTS), limit=3)
    # Writes are refused as well, and nothing is written.
    blocked = api.delete(f"{APPOINTMENTS}/{appointment.pk}")
    assert_rate_limited(blocked, limit=3)
    appointment.refresh_from_db()
    assert appointment.status == "scheduled"


def test_the_default_appointment_limit_is_sixty(api, fresh_window):
    for _ in range(60):
        response = api.get(APPOINTMENTS, {"limit": 1})
        assert response.status_code == 200
    assert limit_headers(response)[1] == 0
    assert_rate_limited(api.get(APPOINTMENTS), limit=60)


def test_counters_are_per_user(settings, clinic, make_client, fresh_window):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 2}
    alice = make_client(UserFactory(clinic=clinic, role=Role.RECEPTIONIST))
    bob = make_client(UserFactory(clinic=clinic, role=Role.RECEPTIONIST))

    alice.get(APPOINTMENTS)
    alice.get(APPOINTMENTS)
    assert_rate_limited(alice.get(APPOINTMENTS), limit=2)

    response = bob.get(APPOINTMENTS)
    assert response.status_code == 200
    assert limit_headers(response)[:2] == (2, 1)
    # Signed-out callers are counted by address, apart from both.
    assert APIClient().get(APPOINTMENTS).status_code == 401


def test_one_user_shares_one_counter_across_logins(
    settings, receptionist, make_client, fresh_window
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 3}
    phone, laptop = make_client(receptionist), make_client(receptionist)
    phone.get(APPOINTMENTS)
    laptop.get(APPOINTMENTS)
    phone.get(APPOINTMENTS)
    assert_rate_limited(laptop.get(APPOINTMENTS), limit=3)


# --- Public API (health): 30 a minute ---------------------------------------------------------


def test_health_is_limited_as_public(settings, fresh_window):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "public": 2}
    client = APIClient()
    assert client.get(HEALTH).status_code == 200
    assert client.get(HEALTH).status_code == 200
    assert_rate_limited(client.get(HEALTH), limit=2)


def test_health_allows_thirty_a_minute(fresh_window):
    client = APIClient()
    for _ in range(30):
        assert client.get(HEALTH).status_code == 200
    assert_rate_limited(client.get(HEALTH), limit=30)


# --- Counters live in the shared cache ---------------------------------------------------------


def _counter_key(category: str, identity: str) -> str:
    window = django_settings.RATE_LIMIT_WINDOW_SECONDS
    return f"ratelimit:{category}:{identity}:{int(time.time() // window) * window}"


def test_a_counter_in_the_cache_is_what_limits(settings, api, receptionist, fresh_window):
    """Whatever else shares the cache (another process, another server) shares the count."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 10}
    cache.set(_counter_key("api", f"user:{receptionist.pk}"), 10, timeout=65)
    assert_rate_limited(api.get(APPOINTMENTS), limit=10)


def test_two_clients_share_the_count(settings, receptionist, make_client, fresh_window):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 4}
    first, second = make_client(receptionist), make_client(receptionist)
    assert limit_headers(first.get(APPOINTMENTS))[1] == 3
    assert limit_headers(second.get(APPOINTMENTS))[1] == 2
    assert cache.get(_counter_key("api", f"user:{receptionist.pk}")) == 2


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="REDIS_URL is not set")
def test_with_redis_the_counters_live_in_redis(settings, api, receptionist, fresh_window):
    """A separate Redis connection (no Django cache involved) sees and sets the count."""
    import redis

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 5}
    raw = redis.Redis.from_url(django_settings.REDIS_URL)
    key = cache.make_key(_counter_key("api", f"user:{receptionist.pk}"))

    api.get(APPOINTMENTS)
    api.get(APPOINTMENTS)
    assert int(raw.get(key)) == 2
    assert 0 < raw.ttl(key) <= 65  # windows expire by themselves

    raw.set(key, 5, ex=65)  # e.g. another Daphne process used up the rest
    assert_rate_limited(api.get(APPOINTMENTS), limit=5)
    assert int(raw.get(key)) == 6


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="REDIS_URL is not set")
def test_when_redis_is_unreachable_requests_are_served_not_500(settings, api, clinic):
    """Limits guard against abuse; losing their counters must not take the API down too."""
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": dead,
            "OPTIONS": {
                **settings.CACHES["default"].get("OPTIONS", {}),
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    assert api.get(APPOINTMENTS).status_code == 200
    assert APIClient().get(HEALTH).status_code == 200
    assert _login(APIClient(), "nobody@clinic.test").status_code == 401


def test_a_signed_out_session_is_counted_by_address_not_by_user(
    settings, receptionist, make_client, fresh_window
):
    """The user is counted with their lookup; when the session then turns out signed out,
    that count is undone and the request counts against the caller's address, as any
    other 401."""
    from accounts.tokens import revoke_session

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 5}
    client = make_client(receptionist)
    assert limit_headers(client.get(APPOINTMENTS))[1] == 4
    revoke_session(user=receptionist, sid=_sid(client))

    response = client.get(APPOINTMENTS, REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 401
    assert limit_headers(response)[1] == 4  # the address's first request
    assert cache.get(_counter_key("api", f"user:{receptionist.pk}")) == 1
    assert cache.get(_counter_key("api", "ip:198.51.100.9")) == 1


def _sid(client) -> str:
    from rest_framework_simplejwt.tokens import RefreshToken

    return RefreshToken(client.tokens["refresh_token"])["sid"]


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="REDIS_URL is not set")
def test_with_redis_a_signed_in_request_is_one_round_trip(
    settings, api, receptionist, monkeypatch, fresh_window
):
    """The session's user and the rate-limit counter come back together: one command."""
    import redis

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 5}
    assert api.get(APPOINTMENTS).status_code == 200  # the user is cached from now on
    commands = []
    original = redis.Redis.execute_command

    def counting(self, *args, **options):
        commands.append(args[0])
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    response = api.get(APPOINTMENTS)
    assert response.status_code == 200
    assert commands == ["EVALSHA"]
    assert limit_headers(response)[:2] == (5, 3)
    key = cache.make_key(_counter_key("api", f"user:{receptionist.pk}"))
    assert 0 < redis.Redis.from_url(django_settings.REDIS_URL).ttl(key) <= 65
