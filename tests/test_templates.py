"""Rendering: shipped templates, host overrides, per-user-type templates, {% extends %},
escaping, links and languages."""

import re

import pytest
from django.core import mail

from django_async_email import email_utils
from django_async_email.accounts.tokens import decode_uid
from django_async_email.delivery.build.compose import build_message
from django_async_email.delivery.build.messages import AsyncEmailMessage, template_candidates
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import Broadcast, OutboxEmail

pytestmark = pytest.mark.django_db

KINDS = {
    "verification": email_utils.send_verification_email,
    "password_reset": email_utils.send_password_reset_email,
    "password_changed": email_utils.send_password_changed_email,
    "welcome": email_utils.send_welcome_email,
}


def _sent_message():
    row = OutboxEmail.objects.latest("pk")
    deliver_emails([row.pk])
    return mail.outbox[-1]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_user_kind_renders_subject_text_and_html(kind, make_user, published):
    KINDS[kind](make_user(email="ann@example.com", username="ann", first_name="Ann"))
    message = _sent_message()
    assert message.subject and "\n" not in message.subject
    assert "Hello Ann," in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "<html" in html and "Hello Ann," in html
    assert "ZamIO" in message.body and "ZamIO" in html  # from the shared base template
    assert "{{" not in message.body + html and "{%" not in message.body + html


def test_invitation_and_notification_render(make_user, published):
    inviter = make_user(first_name="Ama")
    email_utils.send_invitation_email(inviter, "new@example.com", "Artist")
    invitation = _sent_message()
    # The inviter's name is user-controlled: in the body, never in the subject.
    assert invitation.subject == "You are invited to join ZamIO"
    assert "Ama sent you this invitation." in invitation.body
    assert "https://app.zamio.test/accept-invitation?token=" in invitation.body
    email_utils.send_notification_to_users([inviter.pk], "Platform Update", "Line one\nLine two")
    note = _sent_message()
    assert note.subject == "Platform Update"
    assert "Line one\nLine two" in note.body
    assert "Line one<br>Line two" in note.alternatives[0][0]


def test_links_use_the_configured_base_url_and_carry_a_working_uid(make_user, published):
    user = make_user()
    email_utils.send_password_reset_email(user)
    body = _sent_message().body
    (link,) = re.findall(r"https://\S+", body)
    assert link.startswith("https://app.zamio.test/reset-password?uid=")
    uid = re.search(r"uid=([^&]+)", link).group(1)
    assert decode_uid(uid) == str(user.pk)


def test_links_use_an_allowed_base_url_given_by_the_caller(make_user, published):
    email_utils.send_verification_email(make_user(), base_url="https://partners.zamio.test")
    assert "https://partners.zamio.test/verify-email?uid=" in _sent_message().body


def test_link_templates_come_from_settings(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "VERIFICATION_URL": "{base_url}/#/confirm/{uid}/{token}"}
    email_utils.send_verification_email(make_user())
    assert re.search(r"https://app\.zamio\.test/#/confirm/\w+/[\w-]+", _sent_message().body)


def test_subject_and_text_are_not_html_escaped_but_html_is(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SITE_NAME": "O'Brien & Sons"}
    user = make_user()
    email_utils.send_notification_to_users(
        [user.pk], "Tom & Jerry's <update>", "Use <b>bold</b> & \"quotes\"", email_type="update"
    )
    message = _sent_message()
    assert message.subject == "Tom & Jerry's <update>"
    assert 'Use <b>bold</b> & "quotes"' in message.body
    assert "O'Brien & Sons" in message.body
    html = message.alternatives[0][0]
    assert "Use &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quotes&quot;" in html
    assert "<b>bold</b>" not in html
    assert "O&#x27;Brien &amp; Sons" in html
    email_utils.send_welcome_email(user)
    assert _sent_message().subject == "Welcome to O'Brien & Sons"


def test_a_host_template_at_the_same_path_wins_and_can_extend_the_base(make_user, published, settings, tmp_path):
    override = tmp_path / "django_async_email" / "welcome.html"
    override.parent.mkdir()
    override.write_text(
        '{% extends "django_async_email/base.html" %}'
        "{% block subject %}Hi from the host, {{ user.get_username }}{% endblock %}"
        "{% block text_content %}Host text for {{ user.get_username }}{% endblock %}"
        "{% block html_content %}<p>Host HTML</p>{% endblock %}"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    email_utils.send_welcome_email(make_user(username="bo"))
    message = _sent_message()
    assert message.subject == "Hi from the host, bo"
    assert message.body.startswith("Host text for bo") and "ZamIO" in message.body
    html = message.alternatives[0][0]
    assert "<p>Host HTML</p>" in html and "<!DOCTYPE html>" in html


def test_templated_mail_alone_renders_an_extending_template_empty(settings, tmp_path):
    """Why rendering.py exists: django-templated-mail 1.1.1 drops blocks under {% extends %}."""
    from templated_mail.mail import BaseEmailMessage

    child = tmp_path / "child.html"
    child.write_text('{% extends "django_async_email/base.html" %}{% block subject %}S{% endblock %}'
                     "{% block text_content %}T{% endblock %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    stock = BaseEmailMessage(template_name="child.html", context={})
    stock.render()
    assert stock.subject == ""
    ours = AsyncEmailMessage(template_name="child.html", context={})
    ours.render()
    assert ours.subject == "S" and ours.body.startswith("T")


def test_template_candidates_prefer_the_user_type():
    assert template_candidates("django_async_email/notification.html", "Station") == [
        "django_async_email/Station/notification.html",
        "django_async_email/notification.html",
    ]
    assert template_candidates("django_async_email/notification.html", "") == ["django_async_email/notification.html"]


@pytest.mark.custom_user
def test_per_user_type_template_is_chosen_first(make_user, published):
    station = make_user(user_type="Station")
    artist = make_user(user_type="Artist")
    email_utils.send_notification_to_users([station.pk, artist.pk], "Maintenance", "Tonight")
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    by_recipient = {m.to[0]: m for m in mail.outbox}
    station_msg, artist_msg = by_recipient[station.email], by_recipient[artist.email]
    assert station_msg.subject == "[Stations] Maintenance"
    assert '<p class="station">Station notice</p>' in station_msg.alternatives[0][0]
    assert "Tonight" in station_msg.alternatives[0][0]
    assert artist_msg.subject == "Maintenance"


def test_a_template_name_given_by_the_caller_is_used(make_user, published, settings, tmp_path):
    custom = tmp_path / "promo.html"
    custom.write_text('{% extends "django_async_email/notification.html" %}'
                      "{% block subject %}Promo: {{ subject }} {{ discount }}{% endblock %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    user = make_user()
    email_utils.send_notification_to_users([user.pk], "Sale", "Body", template_name="promo.html",
                                           context={"discount": "20%"})
    assert _sent_message().subject == "Promo: Sale 20%"


@pytest.mark.custom_user
def test_rendered_in_the_recipients_language(make_user, published):
    email_utils.send_verification_email(make_user(language="fr", username="zoe", first_name="Zoé"))
    message = _sent_message()
    assert message.subject == "Confirmez votre adresse e-mail pour ZamIO"
    assert "Bonjour Zoé," in message.body
    assert '<html lang="fr">' in message.alternatives[0][0]
    email_utils.send_verification_email(make_user(language="", username="max"))
    assert _sent_message().subject == "Confirm your email address for ZamIO"


def test_message_id_and_from_come_from_the_row(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "FROM_EMAIL": "accounts@zamio.test"}
    email_utils.send_welcome_email(make_user())
    row = OutboxEmail.objects.get()
    message = build_message(row)
    assert message.extra_headers["Message-ID"] == row.message_id
    assert message.from_email == "accounts@zamio.test"


def test_no_token_is_stored_on_the_row(make_user, published):
    email_utils.send_password_reset_email(make_user())
    row = OutboxEmail.objects.get()
    body = _sent_message().body
    token = re.search(r"token=([\w-]+)", body).group(1)
    row.refresh_from_db()
    stored = " ".join(str(v) for v in (row.context, row.last_error, row.task_id, row.message_id))
    assert token not in stored


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_without_a_first_name_the_greeting_is_neutral_never_the_address_or_username(kind, make_user, published):
    KINDS[kind](make_user(email="bo@example.com", username="bo_1987"))
    message = _sent_message()
    assert message.body.startswith("Hello,\n") and "bo_1987" not in message.body
    assert "Hello bo@example.com" not in message.body


def test_a_short_name_that_is_only_the_address_is_not_used(make_user, published, monkeypatch):
    user = make_user(email="cy@example.com")
    monkeypatch.setattr(type(user), "get_short_name", lambda self: self.email)
    email_utils.send_welcome_email(user)
    assert _sent_message().body.startswith("Hello,\n")


def test_link_templates_can_carry_the_recipients_address(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL,
                            "VERIFICATION_URL": "{base_url}/verify?uid={uid}&token={token}&email={email}"}
    email_utils.send_verification_email(make_user(email="o'hara+tag@example.com"))
    assert "&email=o%27hara%2Btag%40example.com\n" in _sent_message().body


def test_a_template_that_is_not_an_email_template_is_refused_when_queuing(make_user, published, tmp_path, settings):
    (tmp_path / "emails").mkdir()
    (tmp_path / "emails" / "welcome.html").write_text("<p>Welcome {{ user }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    with pytest.raises(InvalidEmailInput) as refused:
        email_utils.send_notification_to_users([make_user().pk], "Hi", "Body", template_name="emails/welcome.html")
    assert refused.value.field == "template_name"
    assert "no subject and no text_body or html_body block" in str(refused.value)
    assert OutboxEmail.objects.count() == 0 and published == []


def test_a_bare_template_name_means_the_packages_template(make_user, published):
    email_utils.send_notification_to_users([make_user().pk], "Hi", "Body", template_name="welcome")
    assert Broadcast.objects.get().template_name == "django_async_email/welcome.html"


def test_a_template_that_renders_empty_fails_the_row_and_sends_nothing(make_user, published, tmp_path, settings):
    (tmp_path / "hollow.html").write_text(
        '{% extends "django_async_email/base.html" %}{% block subject %}{% endblock %}')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    email_utils.send_notification_to_users([make_user().pk], "Hi", "Body", template_name="notification")
    Broadcast.objects.update(template_name="hollow.html")  # as if the template changed after queuing
    row = OutboxEmail.objects.get()
    deliver_emails([row.pk])
    row.refresh_from_db()
    assert row.status == "failed" and "rendered an empty subject" in row.last_error
    assert mail.outbox == []
