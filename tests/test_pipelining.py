"""RFC 2920 pipelining and several connections per worker process, against a real SMTP
server (aiosmtpd) that offers PIPELINING and one that does not."""

from __future__ import annotations

import smtplib
from email.parser import BytesParser
from email.policy import default

import pytest

from django_async_email import email_utils
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.delivery.send.pipelining import PipelinedSender, data_block
from django_async_email.delivery.send.wire import WireMessage
from django_async_email.models import OutboxEmail

pytestmark = pytest.mark.django_db(transaction=True)


def wire(i, *recipients, body=b"Hello"):
    data = (f"From: a@example.com\r\nTo: {recipients[0]}\r\nSubject: message {i}\r\nMessage-ID: <m{i}@example.com>\r\n"
            f"\r\n").encode() + body + b"\r\n"
    return WireMessage("a@example.com", list(recipients), data)


def session_to(smtp):
    session = smtplib.SMTP(smtp.host, smtp.port, timeout=5)
    session.ehlo()
    return session


def send_all(session, messages):
    queue = list(enumerate(messages))
    outcomes = []
    sender = PipelinedSender(session)
    sender.send_all(lambda: queue.pop(0) if queue else None,
                    lambda key, error, refused: outcomes.append((key, error, refused)))
    return sender, outcomes


def test_the_server_says_whether_it_pipelines(smtp):
    assert not session_to(smtp).has_extn("pipelining")
    smtp.with_pipelining()
    assert session_to(smtp).has_extn("pipelining")


def test_a_run_of_messages_costs_one_round_trip_each_plus_one_and_arrives_as_sent(smtp):
    smtp.with_pipelining()
    messages = [wire(i, f"r{i}@example.com", body=b".leading dot\r\n..two\r\nlast") for i in range(20)]
    sender, outcomes = send_all(session_to(smtp), messages)
    assert sender.round_trips == 21  # four without pipelining
    assert [(key, error) for key, error, _r in outcomes] == [(i, None) for i in range(20)]  # in order
    received = smtp.received
    assert [r.rcpt_tos for r in received] == [[f"r{i}@example.com"] for i in range(20)]
    # Dot-stuffed on the wire, exactly the bytes again on arrival.
    assert [r.data.replace(b"\r\n", b"\n") for r in received] == [m.data.replace(b"\r\n", b"\n") for m in messages]


def test_each_reply_is_acted_on_as_rfc_2920_says(smtp):
    smtp.with_pipelining()
    smtp.refuse("gone@example.com", 550)
    smtp.fail_first("busy@example.com", 1, code=451)
    smtp.refuse_sender("banned@example.com")
    messages = [
        wire(0, "ok@example.com", "gone@example.com"),       # one recipient refused: sent to the other
        wire(1, "gone@example.com"),                         # every recipient refused: not sent
        wire(2, "busy@example.com"),                         # a transient refusal
        WireMessage("banned@example.com", ["x@example.com"], wire(3, "x@example.com").data),  # MAIL refused
        wire(4, "after@example.com"),                        # and the session goes on (RSET)
    ]
    _sender, outcomes = send_all(session_to(smtp), messages)
    by_key = {key: (error, refused) for key, error, refused in outcomes}
    assert by_key[0][0] is None and by_key[0][1] == {"gone@example.com": (550, b"5.1.1 Mailbox unavailable")}
    assert isinstance(by_key[1][0], smtplib.SMTPRecipientsRefused)
    assert by_key[1][0].recipients == {"gone@example.com": (550, b"5.1.1 Mailbox unavailable")}
    assert isinstance(by_key[2][0], smtplib.SMTPRecipientsRefused) and by_key[2][0].recipients[
        "busy@example.com"][0] == 451
    assert isinstance(by_key[3][0], smtplib.SMTPSenderRefused) and by_key[3][0].smtp_code == 550
    assert by_key[4] == (None, {})
    assert [r.rcpt_tos for r in smtp.received] == [["ok@example.com"], ["after@example.com"]]


def test_data_block_quotes_leading_dots_and_ends_the_data():
    assert data_block(b"a\r\n.b\r\n") == b"a\r\n..b\r\n.\r\n"
    assert data_block(b"no end") == b"no end\r\n.\r\n"


# --- Through the pipeline: several connections, each pipelining when it can ----------------------

@pytest.fixture
def notifications(make_user, published, smtp_backend):
    def queue(n):
        users = [make_user(email=f"reader{i}@example.com") for i in range(n)]
        email_utils.send_notification_to_users([u.pk for u in users], "News", "Body")
        return list(OutboxEmail.objects.values_list("pk", flat=True))
    return queue


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_batch_goes_out_over_several_connections_once_each(notifications, smtp, settings, pipelining,
                                                             monkeypatch):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SMTP_CONNECTIONS": 4, "BULK_CHUNK_SIZE": 500}
    if pipelining:
        smtp.with_pipelining()
    groups = []
    real_send = PipelinedSender.send_all

    def counting(self, take_next, report):
        try:
            return real_send(self, take_next, report)
        finally:
            groups.append(self.round_trips)

    monkeypatch.setattr(PipelinedSender, "send_all", counting)
    ids = notifications(60)
    report = deliver_emails(ids)
    # Pipelined: one round trip a message, plus one per run of messages on a connection.
    assert (sum(groups) >= 60 and sum(groups) <= 60 + 2 * len(groups)) if pipelining else groups == []
    assert len(report.sent) == 60 and not report.retry
    assert smtp.connections == 4
    counts = sorted(r.rcpt_tos[0] for r in smtp.received)
    assert counts == sorted(f"reader{i}@example.com" for i in range(60))  # each exactly once
    assert set(OutboxEmail.objects.values_list("status", flat=True)) == {"sent"}
    parsed = BytesParser(policy=default).parsebytes(smtp.received[0].data)
    assert parsed["Subject"] == "News"


def test_the_host_limit_and_a_small_batch_bound_the_connections(notifications, smtp, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SMTP_CONNECTIONS": 4, "BULK_CHUNK_SIZE": 500,
                            "SMTP_HOST_CONNECTION_LIMITS": {smtp.host: 2}}
    deliver_emails(notifications(60))
    assert smtp.connections == 2
    smtp.reset()
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SMTP_HOST_CONNECTION_LIMITS": {}}
    OutboxEmail.objects.all().delete()
    deliver_emails(notifications(5)[-5:])
    assert smtp.connections == 1  # fewer than ten messages: one connection, no thread


def test_a_connection_lost_mid_pipeline_fails_only_what_was_in_flight(notifications, smtp, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SMTP_CONNECTIONS": 1, "BULK_CHUNK_SIZE": 500}
    smtp.with_pipelining()
    ids = notifications(8)
    smtp.drop_after_data("reader3@example.com")
    report = deliver_emails(ids)
    sent = {OutboxEmail.objects.get(pk=pk).recipient for pk in report.sent}
    assert sent == {f"reader{i}@example.com" for i in range(3)}
    assert len(report.retry) == 5  # the dropped one, the one pipelined behind it, and the rest skipped
    OutboxEmail.objects.filter(pk__in=report.retry).update(available_at=None)
    assert len(deliver_emails(report.retry).sent) == 5
    counts = sorted(r.rcpt_tos[0] for r in smtp.received)
    assert counts == sorted(f"reader{i}@example.com" for i in range(8))  # nothing twice, nothing lost


# --- Regressions: what a review of the pipelining found -------------------------------------------

def test_a_421_and_hang_up_keeps_the_outcome_of_a_message_already_accepted(smtp):
    smtp.with_pipelining()
    smtp.refuse_sender("second@example.com", 421)
    messages = [wire(0, "r0@example.com"),
                WireMessage("second@example.com", ["r1@example.com"], wire(1, "r1@example.com").data)]
    queue = list(enumerate(messages))
    outcomes = []
    from django_async_email.delivery.send.pipelining import ConnectionLost

    with pytest.raises(ConnectionLost):
        PipelinedSender(session_to(smtp)).send_all(lambda: queue.pop(0) if queue else None,
                                                   lambda key, error, refused: outcomes.append((key, error)))
    by_key = dict(outcomes)
    assert by_key[0] is None  # its 250 was read: sent, so never retried and never sent twice
    assert by_key[1] is not None and getattr(by_key[1], "smtp_code", 421) == 421
    assert [r.rcpt_tos for r in smtp.received] == [["r0@example.com"]]


def test_a_failed_last_transaction_is_reset_for_whatever_uses_the_session_next(smtp):
    smtp.with_pipelining()
    smtp.refuse("gone@example.com", 550)
    session = session_to(smtp)
    _sender, first = send_all(session, [wire(0, "gone@example.com")])
    assert isinstance(first[0][1], smtplib.SMTPRecipientsRefused)
    _sender, second = send_all(session, [wire(1, "good@example.com")])  # the next batch, same session
    assert second == [(0, None, {})]
    assert session.sendmail("a@example.com", ["plain@example.com"], wire(2, "plain@example.com").data) == {}
    assert [r.rcpt_tos for r in smtp.received] == [["good@example.com"], ["plain@example.com"]]
    assert all(r.data for r in smtp.received)  # no empty message


def test_threads_never_run_more_than_record_every_plus_one_per_connection_ahead(smtp_backend, settings):
    import time
    from types import SimpleNamespace

    from django_async_email.delivery.send.connection import open_connection
    from django_async_email.delivery.send.pool import SenderPool
    from django_async_email.delivery.send.sender import SENT

    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SMTP_CONNECTIONS": 4, "RECORD_EVERY": 10}
    smtp_backend.with_pipelining()
    ready = [(SimpleNamespace(pk=i, expires_at=None), wire(i, f"r{i}@example.com")) for i in range(200)]
    pool = SenderPool(open_connection())  # the test server, as the smtp_backend fixture configured it
    state = {"sent": 0, "first": None}

    def record(row, outcome):
        assert outcome.kind == SENT, outcome
        state["sent"] += 1
        if state["first"] is None:
            time.sleep(1.0)  # the database is slow to take the first write
            state["first"] = len(smtp_backend.received)
        if state["sent"] % 10 == 0:
            pool.recorded()

    pool.send(ready, record)
    pool.close()
    assert state["first"] <= 10 + 4, state["first"]  # not the whole batch while the record step waited
    assert sorted(r.rcpt_tos[0] for r in smtp_backend.received) == sorted(f"r{i}@example.com" for i in range(200))
