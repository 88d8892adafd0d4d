"""Staff-only email previews: every kind, per user type, per language, no broken variables."""

import pytest
from django.test import override_settings

from django_async_email.delivery.build.messages import DEFAULT_TEMPLATES
from django_async_email.web.previews import render_preview, variants

pytestmark = pytest.mark.django_db


def test_previews_are_staff_only(client, make_user):
    assert client.get("/emails/previews/").status_code == 302  # to the admin login
    client.force_login(make_user())
    assert client.get("/emails/previews/").status_code == 302
    assert client.get("/emails/previews/verification/").status_code == 302


def test_index_lists_every_kind(admin_client):
    page = admin_client.get("/emails/previews/").content.decode()
    for kind in DEFAULT_TEMPLATES:
        assert f'href="/emails/previews/{kind}/"' in page


@pytest.mark.parametrize("kind", sorted(DEFAULT_TEMPLATES))
def test_detail_shows_subject_text_and_html_side_by_side(kind, admin_client):
    page = admin_client.get(f"/emails/previews/{kind}/")
    assert page.status_code == 200
    content = page.content.decode()
    assert 'id="subject"' in content and 'id="text"' in content and 'id="html"' in content
    html = admin_client.get(f"/emails/previews/{kind}/html/")
    assert html.status_code == 200 and b"<!DOCTYPE html>" in html.content
    assert "default-src 'none'" in html["Content-Security-Policy"]


@pytest.mark.parametrize("kind", sorted(DEFAULT_TEMPLATES))
def test_no_broken_template_variables(kind, settings):
    templates = [{**settings.TEMPLATES[0], "OPTIONS": {**settings.TEMPLATES[0]["OPTIONS"],
                                                        "string_if_invalid": "BROKEN[%s]"}}]
    with override_settings(TEMPLATES=templates):
        preview = render_preview(kind)
    for part in (preview.subject, preview.text, preview.html):
        assert part and "BROKEN[" not in part, part


def test_links_carry_a_placeholder_not_a_real_token():
    preview = render_preview("password_reset")
    assert "token=preview-token" in preview.text


@pytest.mark.custom_user
def test_per_user_type_variant(admin_client):
    assert variants("notification") == ["", "Station"]
    page = admin_client.get("/emails/previews/notification/?user_type=Station").content.decode()
    assert "[Stations] Platform Update" in page and "django_async_email/Station/notification.html" in page
    assert admin_client.get("/emails/previews/notification/?user_type=Pilot").status_code == 404


def test_language_variant(admin_client):
    page = admin_client.get("/emails/previews/welcome/?lang=fr").content.decode()
    assert "Bienvenue sur ZamIO" in page
    assert admin_client.get("/emails/previews/welcome/?lang=xx").status_code == 404


def test_unknown_kind_is_404(admin_client):
    assert admin_client.get("/emails/previews/nope/").status_code == 404


def test_html_view_checks_its_parameters_too(admin_client):
    assert admin_client.get("/emails/previews/welcome/html/?user_type=../../x").status_code == 404
    assert admin_client.get("/emails/previews/welcome/html/?lang=xx").status_code == 404


def test_notification_preview_shows_the_unsubscribe_footer():
    preview = render_preview("notification")
    for part in (preview.text, preview.html):
        assert "https://app.zamio.test/unsubscribe/preview-token/" in part
        assert "https://app.zamio.test/email-preferences/preview-token/" in part
