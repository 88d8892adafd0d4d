"""The fan-out's one-statement INSERT writes the rows bulk_create would write."""

import pytest
from django.db import DataError, IntegrityError, connection, transaction

from django_async_email import email_utils
from django_async_email.models import Broadcast, Kind, OutboxEmail
from django_async_email.outbox import chunk_insert
from django_async_email.outbox.chunk_insert import insert_chunk
from django_async_email.outbox.fanout import fan_out

# Transactional, so publishes happen on commit as in production and the recorder sees them.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.custom_user]

COMPARED_AWAY = ("id", "message_id", "user", "recipient", "created_at", "updated_at")


@pytest.fixture
def broadcast(make_user, published):
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body", email_type="news")
    return Broadcast.objects.get()


def template_for(broadcast, task_id="task-1"):
    return OutboxEmail(kind=Kind.NOTIFICATION, email_type="news", broadcast=broadcast, task_id=task_id)


def test_rows_are_what_bulk_create_writes(broadcast, make_user):
    users = [make_user() for _ in range(3)]
    ids = insert_chunk(template_for(broadcast), ("user", "recipient", "message_id"),
                       [(u.pk, u.email, f"<m{u.pk}@x>") for u in users], using="default")
    OutboxEmail.objects.bulk_create([OutboxEmail(kind=Kind.NOTIFICATION, email_type="news", broadcast=broadcast,
                                                 task_id="task-1", user=make_user(), message_id="<ref@x>",
                                                 recipient="ref@example.com")])
    reference = OutboxEmail.objects.get(message_id="<ref@x>")
    rows = list(OutboxEmail.objects.filter(pk__in=ids).order_by("pk"))
    assert sorted(ids) == [r.pk for r in rows] and len(rows) == 3
    assert [(r.user_id, r.recipient, r.message_id) for r in rows] == [(u.pk, u.email, f"<m{u.pk}@x>") for u in users]
    def columns(row):  # every column, editable or not, but those that differ by design
        return {f.attname: getattr(row, f.attname) for f in OutboxEmail._meta.concrete_fields
                if f.name not in COMPARED_AWAY}

    for row in rows:
        assert columns(row) == columns(reference)
        assert row.created_at is not None and row.updated_at is not None and row.context == {}


def test_a_value_too_long_for_its_column_is_never_cut_short(broadcast, make_user):
    """PostgreSQL refuses it, as bulk_create's INSERT would; SQLite stores it whole."""
    user = make_user()
    address = "a" * 250 + "@example.com"  # 262 characters for a 254-character column
    if connection.vendor == "postgresql":
        with pytest.raises(DataError), transaction.atomic():
            insert_chunk(template_for(broadcast), ("user", "recipient", "message_id"),
                         [(user.pk, address, "<long@x>")], using="default")
        assert not OutboxEmail.objects.exists()
    else:
        insert_chunk(template_for(broadcast), ("user", "recipient", "message_id"),
                     [(user.pk, address, "<long@x>")], using="default")
        assert OutboxEmail.objects.get().recipient == address


def test_a_unique_column_cannot_be_a_constant(broadcast, make_user):
    user = make_user()
    template = template_for(broadcast)
    template.message_id = "<same@x>"
    with pytest.raises(ValueError, match="message_id"):
        insert_chunk(template, ("user", "recipient"), [(user.pk, user.email)], using="default")


def test_an_existing_row_raises_integrity_error_and_writes_nothing(broadcast, make_user):
    user, other = make_user(), make_user()
    insert_chunk(template_for(broadcast), ("user", "recipient", "message_id"), [(user.pk, user.email, "<a@x>")],
                 using="default")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_chunk(template_for(broadcast), ("user", "recipient", "message_id"),
                     [(other.pk, other.email, "<b@x>"), (user.pk, user.email, "<c@x>")], using="default")
    assert list(OutboxEmail.objects.values_list("message_id", flat=True)) == ["<a@x>"]


def test_a_chunk_over_the_parameter_limit_is_split(broadcast, make_user, monkeypatch):
    fields = len([f for f in OutboxEmail._meta.concrete_fields if f is not OutboxEmail._meta.pk])
    monkeypatch.setattr(chunk_insert, "MAX_PARAMS", fields * 2)  # two rows per statement
    users = [make_user() for _ in range(5)]
    ids = insert_chunk(template_for(broadcast), ("user", "recipient", "message_id"),
                       [(u.pk, u.email, f"<m{u.pk}@x>") for u in users], using="default")
    assert sorted(OutboxEmail.objects.values_list("pk", flat=True)) == sorted(ids) and len(ids) == 5


def test_fan_out_on_a_database_that_cannot_return_ids(make_user, published, monkeypatch):
    users = [make_user(user_type="Artist") for _ in range(4)]
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    before = len(published)
    assert fan_out(Broadcast.objects.get().pk)["recipients"] == 4
    ((_name, args, options),) = published[before:]
    rows = OutboxEmail.objects.filter(pk__in=args[0])
    assert sorted(rows.values_list("user_id", flat=True)) == [u.pk for u in users]
    assert set(rows.values_list("task_id", flat=True)) == {options["task_id"]}
