"""The unsubscribe (RFC 8058 one-click) and preferences pages behind the links in notifications."""

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from django_async_email.accounts.categories import category_named
from django_async_email.accounts.unsubscribe_tokens import make_preferences_token, make_unsubscribe_token
from django_async_email.exceptions import TokenError
from django_async_email.models import EmailPreference, Suppression, SuppressionReason

pytestmark = pytest.mark.django_db

CATEGORIES = {
    "royalties": {"label": "Royalty statements", "email_types": ["royalty_statement"]},
    "tips": {"label": "Tips and news", "email_types": ["newsletter"], "default": False},
}
ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def configured(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CATEGORIES": CATEGORIES}
    # The provider's request must get through CSRF checks that are really on.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]


def provider():
    """A mailbox provider's client: no cookies, no session, no CSRF token, checks enforced."""
    return Client(enforce_csrf_checks=True)


def unsubscribe_url(user, key="royalties"):
    return reverse("django_async_email_pages:unsubscribe", args=[make_unsubscribe_token(user, category_named(key))])


def preferences_url(user):
    return reverse("django_async_email_pages:preferences-token", args=[make_preferences_token(user)])


def rows(user):
    return list(EmailPreference.objects.filter(user=user).values_list("category", "subscribed", "source"))


def tampered(token):
    """The token with one character of its signature changed."""
    position = len(token) - 5
    return token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1:]


def test_the_urls_are_where_the_worker_links(make_user):
    assert reverse("django_async_email_pages:unsubscribe", args=["t"]) == "/unsubscribe/t/"
    assert reverse("django_async_email_pages:preferences-token", args=["t"]) == "/email-preferences/t/"
    assert reverse("django_async_email_pages:preferences") == "/email-preferences/"


def test_one_click_post_unsubscribes_without_cookies_or_csrf(make_user):
    user = make_user()
    url = unsubscribe_url(user)
    response = provider().post(url, data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer" and "no-store" in response["Cache-Control"]
    assert "Royalty statements" in response.content.decode()
    assert rows(user) == [("royalties", False, EmailPreference.Source.ONE_CLICK)]
    changed_at = EmailPreference.objects.get(user=user).changed_at

    again = provider().post(url, data=ONE_CLICK, content_type=FORM)
    assert again.status_code == 200
    assert rows(user) == [("royalties", False, EmailPreference.Source.ONE_CLICK)]
    assert EmailPreference.objects.get(user=user).changed_at == changed_at


def test_one_click_post_as_multipart_counts_too(make_user):
    user = make_user()
    assert provider().post(unsubscribe_url(user), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert rows(user) == [("royalties", False, EmailPreference.Source.ONE_CLICK)]


def test_one_click_turns_off_a_category_chosen_earlier(make_user):
    user = make_user()
    EmailPreference.objects.create(user=user, category="royalties", subscribed=True, source="page")
    assert provider().post(unsubscribe_url(user), data=ONE_CLICK, content_type=FORM).status_code == 200
    assert rows(user) == [("royalties", False, EmailPreference.Source.ONE_CLICK)]


def test_get_shows_a_confirmation_and_changes_nothing(make_user):
    user = make_user()
    url = unsubscribe_url(user)
    for _ in range(3):  # a mail scanner, a link preview, the person
        page = provider().get(url)
        assert page.status_code == 200
        assert page["Referrer-Policy"] == "no-referrer" and "no-store" in page["Cache-Control"]
    content = page.content.decode()
    assert '<form method="post">' in content and "Royalty statements" in content
    assert 'href="/email-preferences/' in content
    assert rows(user) == []


def test_the_confirmation_button_unsubscribes_with_source_link(make_user):
    user = make_user()
    url = unsubscribe_url(user)
    done = provider().post(url, {"confirm": "1"})
    assert done.status_code == 200
    assert rows(user) == [("royalties", False, EmailPreference.Source.LINK)]
    # Already off: the page says so and offers no button; the link to the preferences stays.
    page = provider().get(url).content.decode()
    assert "already unsubscribed" in page and "<form" not in page and 'href="/email-preferences/' in page


def test_bad_tokens_get_400_and_change_nothing(make_user):
    user = make_user()
    good = make_unsubscribe_token(user, category_named("royalties"))
    foreign = make_preferences_token(user)  # the other salt
    other_category = make_unsubscribe_token(user, category_named("tips"))
    for token in (tampered(good), foreign, "not-a-token", good + "x", tampered(other_category)):
        url = reverse("django_async_email_pages:unsubscribe", args=[token])
        for response in (provider().get(url), provider().post(url, data=ONE_CLICK, content_type=FORM),
                         provider().post(url, {"confirm": "1"})):
            assert response.status_code == 400, token
            assert TokenError.public_message in response.content.decode()
            assert response["Referrer-Policy"] == "no-referrer"
    assert rows(user) == []
    bad = reverse("django_async_email_pages:preferences-token", args=[good])  # an unsubscribe token
    assert provider().get(bad).status_code == 400
    assert provider().post(bad, {"action": "save"}).status_code == 400
    assert provider().post(bad, {"action": "unsubscribe_all"}).status_code == 400
    assert rows(user) == [] and not Suppression.objects.exists()


def test_a_deleted_user_or_a_removed_category_is_a_bad_token(make_user, settings):
    user, gone = make_user(), make_user()
    gone_url = unsubscribe_url(gone)
    gone.delete()
    assert provider().post(gone_url, data=ONE_CLICK, content_type=FORM).status_code == 400
    url = unsubscribe_url(user, "tips")
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CATEGORIES": {"royalties": CATEGORIES["royalties"]}}
    assert provider().post(url, data=ONE_CLICK, content_type=FORM).status_code == 400
    assert not EmailPreference.objects.exists()


def test_a_token_signed_with_a_rotated_key_still_works(make_user, settings):
    user = make_user()
    settings.SECRET_KEY = "the-old-key-" + "x" * 40
    url = unsubscribe_url(user)
    settings.SECRET_KEY = "the-new-key-" + "y" * 40
    assert provider().post(url, data=ONE_CLICK, content_type=FORM).status_code == 400  # no fallback: refused
    assert rows(user) == []
    settings.SECRET_KEY_FALLBACKS = ["the-old-key-" + "x" * 40]
    assert provider().post(url, data=ONE_CLICK, content_type=FORM).status_code == 200
    assert rows(user) == [("royalties", False, EmailPreference.Source.ONE_CLICK)]


def test_preferences_page_by_token_lists_every_category_and_saves(make_user):
    user = make_user()
    url = preferences_url(user)
    page = provider().get(url)
    assert page.status_code == 200 and page["Referrer-Policy"] == "no-referrer"
    content = page.content.decode()
    for label in ("Royalty statements", "Tips and news", "Other notifications"):
        assert label in content
    assert 'value="royalties" checked' in content and 'value="notifications" checked' in content
    assert 'value="tips">' in content  # off by default
    assert rows(user) == []

    # The token is the credential: no cookie, no CSRF token needed.
    saved = provider().post(url, {"action": "save", "categories": ["tips", "notifications"]})
    assert saved.status_code == 200 and "saved" in saved.content.decode()
    assert sorted(rows(user)) == [("royalties", False, "page"), ("tips", True, "page")]  # only what changed
    content = saved.content.decode()
    assert 'value="royalties">' in content and 'value="tips" checked' in content


def test_preferences_page_unsubscribe_from_all(make_user):
    user = make_user(email="Ama@Example.com")
    response = provider().post(preferences_url(user), {"action": "unsubscribe_all"})
    assert response.status_code == 200
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason, entry.source) == (
        "ama@example.com", SuppressionReason.UNSUBSCRIBED_ALL, "preferences page")
    page = provider().get(preferences_url(user)).content.decode()
    assert "No notifications are sent to this address" in page


def test_bad_preferences_token_is_400(make_user):
    user = make_user()
    token = make_preferences_token(user)
    for bad in (tampered(token), make_unsubscribe_token(user, category_named("royalties")), "nope"):
        url = reverse("django_async_email_pages:preferences-token", args=[bad])
        assert provider().get(url).status_code == 400
        assert provider().post(url, {"action": "save", "categories": ["tips"]}).status_code == 400
    assert rows(user) == []


def test_signed_in_user_page_without_a_token(make_user):
    user = make_user()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get("/email-preferences/")
    assert page.status_code == 200 and "Royalty statements" in page.content.decode()
    # A session is the credential here, so CSRF applies.
    assert client.post("/email-preferences/", {"action": "save", "categories": ["tips"]}).status_code == 403
    assert rows(user) == []
    csrf = client.cookies["csrftoken"].value
    saved = client.post("/email-preferences/", {"action": "save", "categories": ["royalties", "notifications"],
                                                "csrfmiddlewaretoken": csrf})
    assert saved.status_code == 200
    assert rows(user) == []  # nothing changed: every category as it was
    client.post("/email-preferences/", {"action": "save", "categories": ["royalties"], "csrfmiddlewaretoken": csrf})
    assert rows(user) == [("notifications", False, "page")]


def test_anonymous_is_redirected_to_login():
    response = Client().get("/email-preferences/")
    assert response.status_code == 302
    assert response.url.startswith(django_settings.LOGIN_URL) and "next=/email-preferences/" in response.url
    assert Client().post("/email-preferences/", {"action": "unsubscribe_all"}).status_code in (302, 403)
    assert not Suppression.objects.exists()


def test_tokens_last_forever_unless_a_max_age_is_set(make_user, settings, monkeypatch):
    import time
    from datetime import timedelta
    from types import SimpleNamespace

    from django.core import signing

    user = make_user()
    url = unsubscribe_url(user)
    # A year later on signing's clock, the default still takes the token.
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: time.time() + 365 * 86400))
    assert provider().get(url).status_code == 200
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "UNSUBSCRIBE_TOKEN_MAX_AGE": timedelta(days=30)}
    assert provider().post(url, data=ONE_CLICK, content_type=FORM).status_code == 400
    assert rows(user) == []
