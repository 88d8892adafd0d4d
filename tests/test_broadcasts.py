"""Bulk notifications: O(1) request path, streaming fan-out, uniqueness, races, cancel, progress."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_async_email import email_utils
from django_async_email.delivery.claim import claim_emails
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.models import Broadcast, OutboxEmail
from django_async_email.outbox.fanout import fan_out

# Transactional, so publishes happen on commit as in production and the recorder sees them.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.custom_user]


@pytest.fixture
def artists(django_user_model):
    def make(n, **fields):
        start = django_user_model.objects.count()
        users = [django_user_model(username=f"artist{start + i}", email=f"artist{start + i}@example.com",
                                   user_type="Artist", **fields) for i in range(n)]
        django_user_model.objects.bulk_create(users)
        return list(django_user_model.objects.filter(user_type="Artist").order_by("pk"))

    return make


def _fan_out_all(published):
    for name, args, _options in list(published):
        if name.endswith("send_bulk_notification_email_task"):
            fan_out(args[0])


def test_fan_out_creates_one_row_per_recipient_in_chunks(artists, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 40}
    users = artists(100)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    published_before = len(published)
    _fan_out_all(published)
    chunks = published[published_before:]
    assert [len(args[0]) for _n, args, _o in chunks] == [40, 40, 20]
    assert all(o["queue"] == "low" for _n, _a, o in chunks)
    assert sorted(OutboxEmail.objects.values_list("user_id", flat=True)) == [u.pk for u in users]
    broadcast = Broadcast.objects.get()
    assert broadcast.total == 100 and broadcast.state == "sending"


def test_running_the_fan_out_again_adds_nothing(artists, published):
    artists(30)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    broadcast = Broadcast.objects.get()
    fan_out(broadcast.pk)
    rows = set(OutboxEmail.objects.values_list("pk", "message_id"))
    fan_out(broadcast.pk)
    assert set(OutboxEmail.objects.values_list("pk", "message_id")) == rows
    Broadcast.objects.filter(pk=broadcast.pk).update(total=None)
    assert fan_out(broadcast.pk)["recipients"] == 30 and OutboxEmail.objects.count() == 30


def test_fan_out_skips_inactive_and_addressless_users(artists, published, make_user):
    artists(3)
    make_user(user_type="Artist", is_active=False)
    make_user(user_type="Artist", email="")
    make_user(user_type="Station")
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    fan_out(Broadcast.objects.get().pk)
    assert OutboxEmail.objects.count() == 3


def test_unverified_addresses_can_be_left_out(artists, published, settings):
    users = artists(4)
    type(users[0]).objects.filter(pk__in=[users[0].pk, users[1].pk]).update(email_verified=True)
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_INCLUDE_UNVERIFIED": False}
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    fan_out(Broadcast.objects.get().pk)
    assert sorted(OutboxEmail.objects.values_list("user_id", flat=True)) == [users[0].pk, users[1].pk]


def test_a_long_id_list_takes_the_bulk_path(artists, published, settings, django_assert_max_num_queries):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 50}
    users = artists(120)
    with django_assert_max_num_queries(4):
        task_id = email_utils.send_notification_to_users([u.pk for u in users] + [999999], "Hello", "Body")
    assert OutboxEmail.objects.count() == 0
    (name, args, options), = published
    assert name.endswith("send_bulk_notification_email_task") and options["task_id"] == task_id
    fan_out(args[0])
    assert OutboxEmail.objects.count() == 120
    assert email_utils.broadcast_progress(task_id)["total"] == 120


def test_fan_out_queries_per_chunk_are_constant(artists, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 25}

    def queries_for_a_fresh_broadcast():
        OutboxEmail.objects.all().delete()
        Broadcast.objects.all().delete()
        email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
        with CaptureQueriesContext(connection) as ctx:
            result = fan_out(Broadcast.objects.get().pk)
        return len(ctx.captured_queries), result["chunks"]

    counts = []
    for _ in range(3):
        artists(50)
        counts.append(queries_for_a_fresh_broadcast())
    assert [chunks for _q, chunks in counts] == [2, 4, 6]
    queries = [q for q, _chunks in counts]
    per_chunk = (queries[1] - queries[0]) / 2
    assert queries[2] - queries[1] == queries[1] - queries[0], "the same number of queries for every chunk"
    # page read, cancel check, savepoint, INSERT ... RETURNING (with the task id), release
    assert per_chunk <= 5


def test_each_row_carries_the_task_id_it_was_published_under(artists, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 10}
    artists(25)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    before = len(published)
    fan_out(Broadcast.objects.get().pk)
    for _name, args, options in published[before:]:
        assert set(OutboxEmail.objects.filter(pk__in=args[0]).values_list("task_id", flat=True)) == {
            options["task_id"]}
    assert sum(len(args[0]) for _n, args, _o in published[before:]) == 25


def test_a_fan_out_run_again_after_a_crash_fills_the_gap_and_sends_nothing_twice(artists, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 10}
    users = artists(30)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    broadcast = Broadcast.objects.get()
    fan_out(broadcast.pk)
    # The first run died before its last chunk committed, and one email was already sent.
    OutboxEmail.objects.filter(user_id__in=[u.pk for u in users[20:]]).delete()
    sent = OutboxEmail.objects.filter(user_id=users[0].pk).get()
    OutboxEmail.objects.filter(pk=sent.pk).update(status="sent")
    before = len(published)
    # It goes on after the last chunk written: only the missing chunk is written and
    # published (the chunks before it were published when they were written; if such a
    # publish was lost, the sweep republishes their rows).
    assert fan_out(broadcast.pk) == {"chunks": 1, "recipients": 30}
    republished = [pk for _n, args, _o in published[before:] for pk in args[0]]
    assert sorted(OutboxEmail.objects.values_list("user_id", flat=True)) == [u.pk for u in users]
    assert sent.pk not in republished and len(republished) == len(set(republished)) == 10
    assert set(OutboxEmail.objects.filter(pk__in=republished).values_list("user_id", flat=True)) == {
        u.pk for u in users[20:]}
    for _name, args, options in published[before:]:
        assert set(OutboxEmail.objects.filter(pk__in=args[0]).values_list("task_id", flat=True)) == {
            options["task_id"]}


def test_send_queries_per_chunk_are_constant(artists, published, django_assert_max_num_queries):
    artists(120)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    fan_out(Broadcast.objects.get().pk)
    for _name, args, _o in published[1:]:
        # 9, two for the screen step (the suppression list, the preferences) and the
        # broadcast, loaded once for the chunk
        with django_assert_max_num_queries(12):
            deliver_emails(args[0])
    assert OutboxEmail.objects.filter(status="sent").count() == 120


def test_a_claimed_chunk_shares_one_broadcast_instance(artists, published):
    """The broadcast (its id list and context) is read once per chunk, not decoded per row."""
    users = artists(30)
    email_utils.send_notification_to_users([u.pk for u in users], "Hello", "Body", context={"k": "v"})
    _token, rows = claim_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    assert len(rows) == 30 and len({id(row.broadcast) for row in rows}) == 1
    assert rows[0].broadcast.context == {"k": "v"}


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_the_same_rows_never_share_one(artists, published):
    artists(200)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    fan_out(Broadcast.objects.get().pk)
    ids = list(OutboxEmail.objects.values_list("pk", flat=True))
    barrier = threading.Barrier(2)
    claimed = []

    def worker():
        barrier.wait()
        try:
            for start in range(0, len(ids), 20):
                _token, rows = claim_emails(ids[start:start + 40])
                claimed.append([r.pk for r in rows])
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [pk for batch in claimed for pk in batch]
    assert sorted(flat) == sorted(ids), "every row claimed exactly once"
    assert OutboxEmail.objects.filter(attempts=1).count() == 200


def test_cancel_stops_rows_not_yet_sent(artists, published):
    artists(60)
    task_id = email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")[0]
    fan_out(Broadcast.objects.get().pk)
    first_chunk = published[1][1][0]
    deliver_emails(first_chunk)
    cancelled = email_utils.cancel_broadcast(task_id)
    assert cancelled == 60 - len(first_chunk)
    for _name, args, _o in published[2:]:
        assert deliver_emails(args[0]).sent == []
    progress = email_utils.broadcast_progress(task_id)
    assert progress == {"state": "cancelled", "total": 60, "sent": len(first_chunk), "failed": 0,
                        "cancelled": 60 - len(first_chunk), "suppressed": 0, "expired": 0, "pending": 0}


def test_cancel_before_fan_out(artists, published):
    artists(10)
    task_id = email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")[0]
    email_utils.cancel_broadcast(task_id)
    assert fan_out(Broadcast.objects.get().pk) == {"chunks": 0, "recipients": 0}
    assert OutboxEmail.objects.count() == 0


def test_progress_and_final_state(artists, published, smtp_backend):
    users = artists(30)
    smtp_backend.refuse(users[0].email)
    task_id = email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")[0]
    assert email_utils.broadcast_progress(task_id)["state"] == "queued"
    fan_out(Broadcast.objects.get().pk)
    assert email_utils.broadcast_progress(task_id) == {"state": "sending", "total": 30, "sent": 0, "failed": 0,
                                                       "cancelled": 0, "suppressed": 0, "expired": 0, "pending": 30}
    for _name, args, _o in published[1:]:
        deliver_emails(args[0])
    assert email_utils.broadcast_progress(task_id) == {"state": "done_with_failures", "total": 30, "sent": 29,
                                                       "failed": 1, "cancelled": 0, "suppressed": 0, "expired": 0,
                                                       "pending": 0}


def test_progress_in_the_admin(admin_client, artists, published):
    artists(5)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    fan_out(Broadcast.objects.get().pk)
    page = admin_client.get("/admin/django_async_email/broadcast/").content.decode()
    pending = OutboxEmail.objects.count()  # the artists, and the admin user (an Artist by default)
    assert pending == 6 and f"0 sent, 0 failed, {pending} pending" in page


def test_cancel_from_the_admin(admin_client, artists, published):
    artists(5)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    broadcast = Broadcast.objects.get()
    fan_out(broadcast.pk)
    response = admin_client.post("/admin/django_async_email/broadcast/",
                                 {"action": "cancel", "_selected_action": [broadcast.pk]}, follow=True)
    assert f"{OutboxEmail.objects.count()} email(s) will not be sent" in response.content.decode()
    assert set(OutboxEmail.objects.values_list("status", flat=True)) == {"cancelled"}
