"""Hanging up and transferring a live call through Twilio's REST API (transport faked)."""

import json
import logging

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response

from voice.telephony import TwilioTelephony

CALL_SID = "CA1234567890abcdef1234567890abcdef"


class FakeTwilioHttp(HttpClient):
    """Only the transport: records requests, answers as Twilio's API would."""

    def __init__(self, status=200, body=None):
        super().__init__(logger=logging.getLogger("twilio.http_client"), is_async=False)
        self.requests = []
        self.status, self.body = status, body

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ):
        self.requests.append({"method": method, "url": url, "data": data, "auth": auth})
        body = self.body or {"sid": CALL_SID, "status": "completed"}
        return Response(self.status, json.dumps(body))


def test_hangup_posts_status_completed_to_the_call():
    http = FakeTwilioHttp()
    TwilioTelephony("AC123", "token", http_client=http).hangup(CALL_SID)
    request = http.requests[0]
    assert request["method"] == "POST"
    assert (
        request["url"] == f"https://api.twilio.com/2010-04-01/Accounts/AC123/Calls/{CALL_SID}.json"
    )
    assert request["data"] == {"Status": "completed"}
    assert request["auth"] == ("AC123", "token")


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, 20404), (400, 21220)],  # gone / "Call is not in-progress"
)
def test_hanging_up_a_call_that_already_ended_is_success(status, code):
    http = FakeTwilioHttp(
        status, {"code": code, "message": "Call is not in-progress", "status": status}
    )
    TwilioTelephony("AC123", "token", http_client=http).hangup(CALL_SID)  # no exception


def test_other_twilio_errors_are_raised():
    http = FakeTwilioHttp(401, {"code": 20003, "message": "Authenticate", "status": 401})
    with pytest.raises(TwilioRestException):
        TwilioTelephony("AC123", "bad", http_client=http).hangup(CALL_SID)


def test_transfer_replaces_the_call_with_a_dial_to_the_front_desk():
    http = FakeTwilioHttp()
    TwilioTelephony("AC123", "token", http_client=http).transfer(
        CALL_SID, number="+918041234567", text="Connecting you to the front desk.", language="en"
    )
    twiml = http.requests[0]["data"]["Twiml"]
    assert "<Dial>+918041234567</Dial>" in twiml
    assert "Connecting you to the front desk." in twiml
