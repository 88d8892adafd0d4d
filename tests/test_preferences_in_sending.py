"""Preferences and the suppression list where emails are written and sent: the fan-out, the
short list and the worker skip whom they must, in the query, and count every skip."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_async_email import email_utils
from django_async_email.accounts import preferences, suppression
from django_async_email.accounts.categories import category_for, category_named
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.models import Broadcast, EmailPreference, OutboxEmail
from django_async_email.outbox.fanout import fan_out

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.custom_user]

CATEGORIES = {
    "updates": {"label": "Product updates", "email_types": ["update", "feature_announcement"]},
    "alerts": {"label": "Alerts", "email_types": ["alert"]},
    "digest": {"label": "Weekly digest", "email_types": ["digest"], "default": False},
}


@pytest.fixture(autouse=True)
def categories(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CATEGORIES": CATEGORIES}


@pytest.fixture
def artists(django_user_model):
    def make(n):
        start = django_user_model.objects.count()
        django_user_model.objects.bulk_create([
            django_user_model(username=f"artist{start + i}", email=f"artist{start + i}@example.com",
                              user_type="Artist") for i in range(n)])
        return list(django_user_model.objects.filter(user_type="Artist").order_by("pk"))

    return make


def _statuses(broadcast):
    return dict(OutboxEmail.objects.filter(broadcast=broadcast).values_list("recipient", "suppressed_reason"))


def test_categories_from_the_setting_and_the_catch_all():
    assert category_for("alert").key == "alerts"
    assert category_for("feature_announcement").label == "Product updates"
    other = category_for("something_else")
    assert (other.key, other.default) == ("notifications", True)
    assert category_named("digest").default is False


def test_the_fan_out_skips_and_counts_opted_out_and_suppressed_users(artists, published):
    users = artists(6)
    preferences.unsubscribe(users[0], category_for("update"), preferences.Source.ONE_CLICK)
    preferences.unsubscribe(users[1], category_for("alert"), preferences.Source.API)  # another category
    suppression.suppress("ARTIST2@example.com", "hard_bounce")
    suppression.suppress(users[3].email, "unsubscribed_all")
    email_utils.send_notification_to_user_types(["Artist"], "New", "Body", email_type="update")
    broadcast = Broadcast.objects.get()
    fan_out(broadcast.pk)
    reasons = _statuses(broadcast)
    assert reasons == {users[0].email: "unsubscribed", users[1].email: "", users[2].email: "hard_bounce",
                       users[3].email: "unsubscribed_all", users[4].email: "", users[5].email: ""}
    sent_ids = [pk for name, args, _o in published if name.endswith("send_notification_email_task")
                for pk in args[0]]
    assert set(OutboxEmail.objects.filter(pk__in=sent_ids).values_list("recipient", flat=True)) == {
        users[1].email, users[4].email, users[5].email}
    progress = broadcast.progress()
    assert (progress["total"], progress["suppressed"], progress["pending"]) == (6, 3, 3)
    assert broadcast.suppressed_by_reason() == {"unsubscribed": 1, "hard_bounce": 1, "unsubscribed_all": 1}


def test_a_category_off_by_default_goes_only_to_those_who_opted_in(artists, published):
    users = artists(3)
    preferences.set_preferences(users[1], {"digest": True}, preferences.Source.PAGE)
    email_utils.send_notification_to_user_types(["Artist"], "Digest", "Body", email_type="digest")
    broadcast = Broadcast.objects.get()
    fan_out(broadcast.pk)
    assert _statuses(broadcast) == {users[0].email: "not_opted_in", users[1].email: "",
                                    users[2].email: "not_opted_in"}


def test_the_short_list_skips_the_same_users(artists, published):
    users = artists(4)
    preferences.unsubscribe(users[0], category_for("alert"), preferences.Source.LINK)
    suppression.suppress(users[1].email, "complaint")
    email_utils.send_notification_to_users([u.pk for u in users], "Alert", "Body", email_type="alert")
    broadcast = Broadcast.objects.get()
    assert _statuses(broadcast) == {users[0].email: "unsubscribed", users[1].email: "complaint",
                                    users[2].email: "", users[3].email: ""}
    (task,) = [args for name, args, _o in published if name.endswith("notification_email_task")
               or name.endswith("chunk_task")]
    assert len(task[0]) == 2
    assert broadcast.progress()["suppressed"] == 2


def test_everyone_skipped_finishes_the_broadcast(artists, published):
    users = artists(2)
    for u in users:
        suppression.suppress(u.email, "manual")
    email_utils.send_notification_to_users([u.pk for u in users], "Hi", "Body")
    broadcast = Broadcast.objects.get()
    assert broadcast.state == "done" and broadcast.progress()["suppressed"] == 2


def test_fan_out_queries_per_chunk_stay_constant_with_preferences_and_suppressions(artists, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 25}
    category = category_for("update")

    def queries_for_a_fresh_broadcast():
        OutboxEmail.objects.all().delete()
        Broadcast.objects.all().delete()
        email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body", email_type="update")
        with CaptureQueriesContext(connection) as ctx:
            result = fan_out(Broadcast.objects.get().pk)
        return len(ctx.captured_queries), result["chunks"]

    counts = []
    for _ in range(3):
        users = artists(50)
        # In every chunk: one user opted out, one suppressed, one opted in explicitly.
        for chunk_start in range(len(users) - 50, len(users), 25):
            preferences.unsubscribe(users[chunk_start], category, preferences.Source.API)
            suppression.suppress(users[chunk_start + 1].email, "hard_bounce")
            preferences.set_preferences(users[chunk_start + 2], {"updates": True}, preferences.Source.API)
        counts.append(queries_for_a_fresh_broadcast())
    assert [chunks for _q, chunks in counts] == [2, 4, 6]
    queries = [q for q, _chunks in counts]
    assert queries[2] - queries[1] == queries[1] - queries[0], "the same number of queries for every chunk"
    # page read (with the skip reasons), cancel check, savepoint, INSERT of the skipped,
    # INSERT ... RETURNING of the rest, release
    assert (queries[1] - queries[0]) / 2 <= 6
    assert OutboxEmail.objects.filter(status="suppressed").count() == 12


def test_the_worker_holds_back_a_row_suppressed_while_it_waited(make_user, published):
    user = make_user(user_type="Artist")
    email_utils.send_notification_to_users([user.pk], "Hi", "Body", email_type="update")
    other = make_user(user_type="Artist")
    email_utils.send_notification_to_users([other.pk], "Hi", "Body", email_type="update")
    reset_user = make_user()
    email_utils.send_password_reset_email(reset_user)
    welcome_user = make_user()
    email_utils.send_welcome_email(welcome_user)
    # After queueing: one unsubscribes, one address bounces, one is suppressed by hand.
    preferences.unsubscribe(user, category_for("update"), preferences.Source.ONE_CLICK)
    suppression.suppress(reset_user.email, "hard_bounce")
    suppression.suppress(welcome_user.email, "manual")  # stops notifications, not account emails
    suppression.suppress(other.email, "manual")
    for _name, args, _o in list(published):
        deliver_emails(args[0] if isinstance(args[0], list) else [args[0]])
    rows = {r.recipient: (r.status, r.suppressed_reason) for r in OutboxEmail.objects.all()}
    assert rows == {user.email: ("suppressed", "unsubscribed"), other.email: ("suppressed", "manual"),
                    reset_user.email: ("suppressed", "hard_bounce"), welcome_user.email: ("sent", "")}
    assert OutboxEmail.objects.get(recipient=user.email).last_error == "Not sent: Unsubscribed from the category."


def test_no_preference_row_is_written_for_a_repeated_unsubscribe(make_user):
    user = make_user()
    category = category_for("update")
    preferences.unsubscribe(user, category, preferences.Source.ONE_CLICK)
    first = EmailPreference.objects.get()
    preferences.unsubscribe(user, category, preferences.Source.LINK)
    again = EmailPreference.objects.get()
    assert (again.source, again.changed_at) == (first.source, first.changed_at)


def test_a_hard_bounce_is_not_softened_by_a_later_milder_reason():
    suppression.suppress("bounced@example.com", "hard_bounce", source="SMTP 550")
    assert suppression.suppress("bounced@example.com", "unsubscribed_all").reason == "hard_bounce"
    assert suppression.suppress("bounced@example.com", "complaint").reason == "complaint"
    suppression.unsuppress("bounced@example.com")
    assert suppression.suppress("bounced@example.com", "manual").reason == "manual"
