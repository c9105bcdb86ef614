"""Receivers' URLs must not reach into our own network (SSRF).

Checked twice: when a URL is saved (``check_url``) and when a delivery connects
(``GuardedBackend``). The second check is the one that counts: the connection
resolves the host itself, refuses if any address is not public, and connects to the
very address it checked, so a name that re-resolves to 127.0.0.1 after passing the
first check (DNS rebinding) gets nowhere. TLS still names and verifies the original
host (SNI and certificate). Redirects are never followed and no proxy from the
environment is used.

Public means globally routable: not private, loopback, link-local (169.254.169.254,
the cloud metadata address), multicast, reserved, unspecified, shared (100.64/10),
nor IPv6 forms that carry such an IPv4 address (``::ffff:127.0.0.1``, 6to4, NAT64).
Numeric hosts are read the way the C resolver reads them (``2130706433``,
``0x7f000001``, ``0177.0.0.1``, ``127.1`` are all 127.0.0.1).

``settings.WEBHOOK_ALLOW_PRIVATE_HOSTS`` names exceptions for on-premise receivers
and tests: a host name (``hooks.internal``, ``localhost``) lets that name reach
whatever it resolves to; an address or network (``127.0.0.1``, ``10.1.0.0/16``) may
be reached under any name.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from functools import lru_cache

import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2000
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# What inet_aton accepts: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
_LEGACY_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.I)


class UnsafeURL(ValueError):
    """The URL may not be used for a webhook; the message says why, for the user."""


# --- Addresses ---------------------------------------------------------------------------------


def is_public_address(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return is_public_address(embedded)
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo or ip in _NAT64_LOCAL or ip in _IPV4_COMPATIBLE:
            return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def literal_address(host: str) -> IPAddress | None:
    """The address a numeric host means (every form the resolver accepts), else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise UnsafeURL("The host is not a valid address.") from None
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (tests replace this function)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def addresses_of(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        found = resolve(host, port)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"The host {host!r} could not be resolved.") from None
    addresses = []
    for value in found:
        try:
            addresses.append(ipaddress.ip_address(value.split("%", 1)[0]))
        except ValueError:
            raise UnsafeURL(f"The host {host!r} resolved to an invalid address.") from None
    if not addresses:
        raise UnsafeURL(f"The host {host!r} could not be resolved.")
    return addresses


# --- The exceptions allowed by settings ----------------------------------------------------------


@dataclass(frozen=True)
class Allowances:
    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def allows(self, host: str, ip: IPAddress) -> bool:
        if _normal_host(host) in self.names:
            return True
        ip = _unmapped(ip)
        return any(ip.version == net.version and ip in net for net in self.networks)


@lru_cache(maxsize=8)
def _parse_allowances(entries: tuple[str, ...]) -> Allowances:
    names, networks = set(), []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(_normal_host(entry))
    return Allowances(frozenset(names), tuple(networks))


def allowances() -> Allowances:
    return _parse_allowances(tuple(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_HOSTS", ()) or ()))


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def check_address(host: str, port: int) -> list[IPAddress]:
    """The host's addresses, all of them safe to connect to, or UnsafeURL."""
    addresses = addresses_of(host, port)
    allowed = allowances()
    for ip in addresses:
        if not is_public_address(ip) and not allowed.allows(host, ip):
            raise UnsafeURL(
                f"The host {host!r} is a private, loopback, link-local or reserved address"
                f" ({_unmapped(ip)}); webhooks go to public addresses only."
            )
    return addresses


# --- URLs --------------------------------------------------------------------------------------


def parse_url(url: str) -> httpx.URL:
    """The URL, if its form is acceptable for a webhook (no network access)."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeURL("The URL may not contain spaces or control characters.")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise UnsafeURL("Enter a valid URL.") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL("The URL must start with https:// or http://.")
    if not parsed.host:
        raise UnsafeURL("The URL has no host.")
    authority = re.split(r"[/?#]", url.split("//", 1)[-1], maxsplit=1)[0]
    if parsed.userinfo or "@" in authority:
        raise UnsafeURL("The URL may not contain a user name or password.")
    return parsed


def check_url(url: str) -> str:
    """Refuses (UnsafeURL) a URL a webhook may not use; checks where its host resolves now."""
    parsed = parse_url(url)
    check_address(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
    return url


# --- Connecting ----------------------------------------------------------------------------------


class GuardedBackend(httpcore.SyncBackend):
    """Resolves, checks every address, then connects to a checked address only."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = check_address(host, port)
        except UnsafeURL as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last_error: Exception | None = None
        for ip in addresses:
            try:
                return super().connect_tcp(
                    str(ip), port, timeout, local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"Could not connect to {host}")


@lru_cache(maxsize=1)
def _tls_context():
    """Certificate checks on (host names too); built once, loading the CA bundle is slow."""
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the guarded backend and no proxy."""

    def __init__(self):
        super().__init__(verify=_tls_context(), trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls_context(),
            max_connections=10,
            max_keepalive_connections=0,
            retries=0,
            network_backend=GuardedBackend(),
        )


def guarded_client(timeout: float) -> httpx.Client:
    return httpx.Client(
        transport=GuardedTransport(),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )
