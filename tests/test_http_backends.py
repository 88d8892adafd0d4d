"""An HTTP email backend's errors, classified by the status they carry: django-anymail's
Postmark backend against a local server that answers like the ESP."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from django_async_email import email_utils
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.delivery.send.classify import PERMANENT, TRANSIENT, breaks_connection, classify_send_error
from django_async_email.models import OutboxEmail

anymail = pytest.importorskip("anymail")
from anymail.exceptions import AnymailRequestsAPIError  # noqa: E402

pytestmark = pytest.mark.django_db

#: recipient -> (HTTP status, Postmark error code)
ANSWERS = {"bad@example.com": (422, 300), "busy@example.com": (429, 0), "down@example.com": (500, 0)}


class PostmarkLike(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        to = body["To"]
        self.received.append(to)
        status, code = ANSWERS.get(to, (200, 0))
        answer = {"ErrorCode": code, "Message": "OK" if status == 200 else "Invalid email request",
                  "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "To": to}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def postmark(settings, email_backend):
    server = ThreadingHTTPServer(("127.0.0.1", 0), PostmarkLike)
    PostmarkLike.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test-token",
                        "POSTMARK_API_URL": f"http://127.0.0.1:{server.server_address[1]}/"}
    email_backend("anymail.backends.postmark.EmailBackend")
    yield PostmarkLike
    server.shutdown()


def test_a_422_fails_that_message_alone_and_the_batch_goes_on(postmark, make_user, published):
    users = [make_user(email=a) for a in ("one@example.com", "bad@example.com", "busy@example.com",
                                          "down@example.com", "two@example.com")]
    email_utils.send_notification_to_users([u.pk for u in users], "Hello", "Body")
    report = deliver_emails(list(OutboxEmail.objects.order_by("pk").values_list("pk", flat=True)))
    rows = {r.recipient: r for r in OutboxEmail.objects.all()}
    assert postmark.received == [u.email for u in users]  # every message was tried: none broke the batch
    assert rows["one@example.com"].status == rows["two@example.com"].status == "sent"
    assert rows["bad@example.com"].status == "failed" and "422" in rows["bad@example.com"].last_error
    assert {rows["busy@example.com"].pk, rows["down@example.com"].pk} == set(report.retry)
    assert rows["bad@example.com"].attempts == 1


@pytest.mark.parametrize("status,expected", [(422, PERMANENT), (400, PERMANENT), (401, PERMANENT),
                                             (408, TRANSIENT), (429, TRANSIENT), (500, TRANSIENT), (503, TRANSIENT)])
def test_http_errors_are_classified_by_their_status(status, expected):
    response = requests.Response()
    response.status_code = status
    error = AnymailRequestsAPIError("ESP said no", response=response)
    assert isinstance(error, OSError)  # which is why it used to count as network trouble
    assert classify_send_error(error) == expected
    assert not breaks_connection(error)


def test_network_trouble_without_a_status_still_breaks_the_connection():
    assert classify_send_error(ConnectionResetError()) == TRANSIENT and breaks_connection(ConnectionResetError())
