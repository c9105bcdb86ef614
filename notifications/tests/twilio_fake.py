"""Twilio's Messages API, faked at the only place the twilio SDK touches the network: its
HTTP transport (``TwilioHttpClient.request``). The SDK builds the requests and parses the
answers as it does against Twilio.

``FakeTwilioTransport`` answers ``POST .../Messages.json`` by taking the message (it is
kept in its ``store``) and ``GET .../Messages.json`` by listing the messages it took, with
Twilio's filters (``To``, ``From``, ``DateSent>``), newest first, one page. ``answers``
override it, one per request in order: ``(status, body)`` is answered as is, an exception
is raised, and ``accept_then(exc)`` takes the message and then raises (Twilio got it, the
answer never came back).

The store is a list in memory, or ``FileStore`` (JSON lines appended to a file, shared by
the worker processes of the crash test and the jobs benchmark).
"""

import json
import os
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

ACCOUNT = "AC" + "1" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def message_json(
    *,
    sid: str | None = None,
    to: str = "+919876543210",
    from_: str | None = "+14155550100",
    body: str = "",
    status: str = "queued",
    messaging_service_sid: str | None = None,
    created: datetime | None = None,
    direction: str = "outbound-api",
    account: str = ACCOUNT,
) -> dict:
    """A Message resource as Twilio's API writes it."""
    sid = sid or f"SM{uuid.uuid4().hex}"
    created = created or datetime.now(UTC)
    return {
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": rfc2822(created),
        "date_sent": rfc2822(created) if status not in ("accepted", "queued") else None,
        "date_updated": rfc2822(created),
        "direction": direction,
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": messaging_service_sid,
        "num_segments": "1",
        "price": None,
        "sid": sid,
        "status": status,
        "to": to,
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
    }


def error(status: int, code: int, message: str):
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class accept_then:  # lower case: it reads as an answer, accept_then(WorkerDied())
    """An answer: Twilio takes the message, then ``exc`` is raised instead of its answer."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class FileStore:
    """Messages as JSON lines appended to ``path``: one ``write`` on a file opened with
    ``O_APPEND`` per message, so concurrent processes never mix lines, and a line that was
    written survives its process being killed."""

    def __init__(self, path):
        self.path = path

    def append(self, record: dict) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)

    def __iter__(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = [line for line in handle if line.endswith("\n")]
        except FileNotFoundError:
            return iter([])
        return iter([json.loads(line) for line in lines])


class FakeTwilioTransport(TwilioHttpClient):
    """Twilio's Messages API in memory (or in a ``FileStore``); every request is kept."""

    def __init__(self, answers=(), *, store=None, latency: float = 0.0):
        super().__init__(pool_connections=False)
        self.answers = list(answers)
        self.store = store if store is not None else []
        self.latency = latency  # seconds per create, half before and half after taking it
        self.requests: list[dict] = []

    @property
    def messages(self) -> list[dict]:
        """What Twilio took, oldest first."""
        return list(self.store)

    def posts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def gets(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "GET"]

    def request(self, method, url, params=None, data=None, headers=None, auth=None, **kwargs):
        self.requests.append(
            {"method": method, "url": url, "params": params, "data": data, "auth": auth}
        )
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, tuple):
            status, body = answer
            return Response(status, json.dumps(body), {})
        if method == "POST" and url.endswith("/Messages.json"):
            record = self._take(url, data or {})
            if isinstance(answer, accept_then):
                raise answer.exc
            return Response(201, json.dumps(record), {})
        if method == "GET" and url.endswith("/Messages.json"):
            return Response(200, json.dumps(self._page(url, params or {})), {})
        raise AssertionError(f"FakeTwilioTransport: no answer for {method} {url}")

    def _take(self, url: str, data: dict) -> dict:
        if self.latency:
            time.sleep(self.latency / 2)
        callback = data.get("StatusCallback") or ""
        query = parse_qs(urlsplit(callback).query)
        record = message_json(
            to=data.get("To", ""),
            from_=data.get("From"),
            body=data.get("Body", ""),
            messaging_service_sid=data.get("MessagingServiceSid"),
            account=url.split("/Accounts/")[1].split("/")[0],
        )
        # Not Twilio's: which of our messages it was (its status callback's ?m=), who sent it.
        record |= {
            "m": int(query["m"][0]) if "m" in query else None,
            "pid": os.getpid(),
            "at": time.time(),
        }
        self.store.append(record)
        if self.latency:
            time.sleep(self.latency / 2)
        return {k: v for k, v in record.items() if k not in ("m", "pid", "at")}

    def _page(self, url: str, params: dict) -> dict:
        after = params.get("DateSent>")
        after = after and datetime.strptime(after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        found = []
        for record in self.messages:
            if params.get("To") and record["to"] != params["To"]:
                continue
            if params.get("From") and record["from"] != params["From"]:
                continue
            # This Twilio sends what it takes at once: sent when created.
            if after and parsedate_to_datetime(record["date_created"]) < after:
                continue
            item = {k: v for k, v in record.items() if k not in ("m", "pid", "at")}
            if item["status"] in ("accepted", "queued"):
                item |= {"status": "sent", "date_sent": item["date_created"]}
            found.append(item)
        found.reverse()  # newest first
        size = int(params.get("PageSize") or 50)
        path = urlsplit(url).path.removeprefix("/2010-04-01")
        return {
            "messages": found[:size],
            "end": min(len(found), size) - 1,
            "first_page_uri": f"{path}?PageSize={size}&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}?PageSize={size}&Page=0",
        }
