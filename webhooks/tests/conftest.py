"""Webhook test helpers: a resolver that never leaves the machine, a real HTTP receiver
on 127.0.0.1, and Celery run in-process whatever the environment chose."""

import ipaddress
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.models import Role
from accounts.tests.factories import UserFactory
from vaani.celery import app as celery_app
from webhooks import ssrf

PUBLIC_IP = "93.184.216.34"


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """``dns["name"] = ["10.0.0.1"]`` decides what a name resolves to; other names are public."""
    table: dict[str, list[str]] = {"localhost": ["127.0.0.1", "::1"]}

    def resolve(host, port):
        host = host.rstrip(".").lower()
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return list(table.get(host, [PUBLIC_IP]))
        return [host]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    return table


@pytest.fixture(autouse=True)
def _celery_in_process():
    """Tasks run where they are sent (with Redis configured they would go to a broker)."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.fixture
def allow_local(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]


@pytest.fixture
def owner(clinic):
    return UserFactory(clinic=clinic, role=Role.OWNER)


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0
    headers: dict = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    """A tiny threaded HTTP server: answers from a script (then 200), records each request."""

    def __init__(self, tls=None):
        self.requests: list[Received] = []
        self.script: list[Answer] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:  # an ssl.SSLContext for the server side
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path="/hook", host="127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def respond(self, *answers):
        self.script = [a if isinstance(a, Answer) else Answer(status=a) for a in answers]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()
