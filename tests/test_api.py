"""The REST API: permissions, answers, field errors, throttling, enumeration, status, schema."""

import re
import threading

import pytest

pytest.importorskip("rest_framework")

from django.core.cache import cache  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from django_async_email.api.views import RESET_REQUESTED  # noqa: E402
from django_async_email.models import Broadcast, OutboxEmail  # noqa: E402

pytestmark = pytest.mark.django_db
BASE = "/api/accounts/email/"


@pytest.fixture(autouse=True)
def clear_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def as_user(make_user):
    def client_for(role):
        client = APIClient()
        if role == "user":
            client.force_authenticate(make_user())
        elif role == "staff":
            client.force_authenticate(make_user(is_staff=True))
        return client

    return client_for


def _valid_bodies(make_user):
    target = make_user()
    return {
        "resend-verification/": {},
        "request-password-reset/": {"email": "someone@example.com"},
        "send-invitation/": {"email": "invitee@example.com", "user_type": "Artist"},
        "send-notification-to-users/": {"user_ids": [target.pk], "subject": "Hi", "message": "Body"},
        "send-notification-to-user-type/": {"user_types": ["Artist"], "subject": "Hi", "message": "Body"},
        "verify-email/": {"uid": "MQ", "token": "bad-token"},
        "confirm-password-reset/": {"uid": "MQ", "token": "bad-token", "new_password": "a brand new passphrase"},
        "accept-invitation/": {"token": "x" * 43, "password": "a brand new passphrase"},
        "verify-email-code/": {"email": "someone@example.com", "code": "000000"},
        "confirm-password-reset-code/": {"email": "someone@example.com", "code": "000000",
                                         "new_password": "a brand new passphrase"},
    }


# endpoint -> expected status for anonymous, user, staff
MATRIX = {
    # Anonymous callers give the address to send to (400 without it: "email" is required).
    "resend-verification/": (400, 202, 202),
    "request-password-reset/": (202, 202, 202),
    "send-invitation/": (403, 202, 202),
    "send-notification-to-users/": (403, 403, 202),
    "send-notification-to-user-type/": (403, 403, 202),
    "system-status/": (403, 403, 200),
    # The flow endpoints are anonymous; a bad token is a 400 for everyone.
    "verify-email/": (400, 400, 400),
    "confirm-password-reset/": (400, 400, 400),
    "accept-invitation/": (400, 400, 400),
    "verify-email-code/": (400, 400, 400),
    "confirm-password-reset-code/": (400, 400, 400),
}


@pytest.mark.custom_user
@pytest.mark.parametrize("endpoint", sorted(MATRIX))
@pytest.mark.parametrize("role_index,role", [(0, "anonymous"), (1, "user"), (2, "staff")])
def test_permission_matrix(endpoint, role_index, role, as_user, make_user, published):
    client = as_user(role)
    if endpoint == "system-status/":
        response = client.get(BASE + endpoint)
    else:
        body = _valid_bodies(make_user)[endpoint]
        if endpoint == "send-invitation/":
            body = {**body, "email": f"{role}-invitee@example.com"}
        response = client.post(BASE + endpoint, body, format="json")
    assert response.status_code == MATRIX[endpoint][role_index], response.content


def test_wrong_methods_are_405(as_user):
    assert as_user("staff").get(BASE + "send-invitation/").status_code == 405
    assert as_user("staff").post(BASE + "system-status/").status_code == 405


def test_permissions_are_overridable_in_settings(as_user, settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL,
                            "API_PERMISSIONS": {"system_status": ["rest_framework.permissions.IsAuthenticated"]}}
    assert as_user("user").get(BASE + "system-status/").status_code == 200
    assert as_user("anonymous").get(BASE + "system-status/").status_code == 403


@pytest.mark.custom_user
def test_queued_work_answers_202_with_task_ids(as_user, make_user, published):
    staff = as_user("staff")
    user = make_user()
    one = staff.post(BASE + "send-notification-to-users/",
                     {"user_ids": [user.pk], "subject": "Important Update", "message": "Please update",
                      "email_type": "alert"}, format="json")
    assert one.status_code == 202
    assert one.json() == {"task_id": OutboxEmail.objects.get().task_id}
    many = staff.post(BASE + "send-notification-to-user-type/",
                      {"user_types": ["Artist", "Station"], "subject": "S", "message": "M"}, format="json")
    assert many.status_code == 202
    by_type = list(Broadcast.objects.filter(user_ids__isnull=True).order_by("pk").values_list("task_id", flat=True))
    assert many.json() == {"task_ids": by_type}
    single = staff.post(BASE + "send-notification-to-user-type/",
                        {"user_type": "Artist", "subject": "S", "message": "M"}, format="json")
    assert single.status_code == 202 and len(single.json()["task_ids"]) == 1


@pytest.mark.custom_user
def test_notifications_can_be_scheduled(as_user, make_user, published):
    from datetime import datetime, timezone

    staff, user = as_user("staff"), make_user()
    response = staff.post(BASE + "send-notification-to-users/",
                          {"user_ids": [user.pk], "subject": "S", "message": "M",
                           "send_at": "2030-01-01T09:00:00+02:00", "expires_at": "2030-01-01T12:00:00Z"},
                          format="json")
    assert response.status_code == 202, response.content
    row = OutboxEmail.objects.get()
    assert row.available_at == datetime(2030, 1, 1, 7, 0, tzinfo=timezone.utc)
    assert row.expires_at == datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc) and row.held
    response = staff.post(BASE + "send-notification-to-user-type/",
                          {"user_type": "Artist", "subject": "S", "message": "M", "send_at": "2030-01-01T09:00:00Z"},
                          format="json")
    assert response.status_code == 202, response.content
    broadcast = Broadcast.objects.get(task_id=response.json()["task_ids"][0])
    assert broadcast.send_at == datetime(2030, 1, 1, 9, 0, tzinfo=timezone.utc) and broadcast.held
    assert published == []  # both wait in the outbox for the sweep


@pytest.mark.parametrize(
    "endpoint,body,field",
    [
        ("send-invitation/", {"email": "not-an-address", "user_type": "Artist"}, "email"),
        ("send-invitation/", {"user_type": "Artist"}, "email"),
        ("request-password-reset/", {"email": "x@"}, "email"),
        ("request-password-reset/", {}, "email"),
        ("send-notification-to-users/", {"user_ids": [1], "subject": "", "message": "m"}, "subject"),
        ("send-notification-to-users/", {"user_ids": [1], "message": "m"}, "subject"),
        ("send-notification-to-users/", {"user_ids": [1], "subject": "a\r\nBcc: x@y.z", "message": "m"}, "subject"),
        ("send-notification-to-users/", {"user_ids": [1], "subject": "s", "message": ""}, "message"),
        ("send-notification-to-users/", {"user_ids": "1,2", "subject": "s", "message": "m"}, "user_ids"),
        ("send-notification-to-users/", {"user_ids": ["a"], "subject": "s", "message": "m"}, "user_ids"),
        ("send-notification-to-users/", {"user_ids": [], "subject": "s", "message": "m"}, "user_ids"),
        ("send-notification-to-users/", {"user_ids": [999999], "subject": "s", "message": "m"}, "user_ids"),
        ("send-notification-to-user-type/", {"user_types": ["Pilot"], "subject": "s", "message": "m"}, "user_types"),
        ("send-notification-to-user-type/", {"subject": "s", "message": "m"}, "user_types"),
        ("send-notification-to-users/", {"user_ids": [1], "subject": "s", "message": "m",
                                         "send_at": "2030-01-01T09:00:00"}, "send_at"),
        ("send-notification-to-users/", {"user_ids": [1], "subject": "s", "message": "m",
                                         "send_at": "next tuesday"}, "send_at"),
        ("send-notification-to-user-type/", {"user_types": ["Artist"], "subject": "s", "message": "m",
                                             "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ("send-notification-to-user-type/", {"user_types": ["Artist"], "subject": "s", "message": "m",
                                             "send_at": "2030-01-02T00:00:00Z",
                                             "expires_at": "2030-01-01T00:00:00+00:00"}, "expires_at"),
        ("confirm-password-reset/", {"uid": "MQ", "token": "t"}, "new_password"),
        ("accept-invitation/", {"token": "t"}, "password"),
    ],
)
def test_bad_input_is_400_with_the_field_named(endpoint, body, field, as_user, published, settings):
    if "Pilot" in str(body) and not settings.CUSTOM_USER:
        settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "USER_TYPES": ["Artist"]}
    response = as_user("staff").post(BASE + endpoint, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert OutboxEmail.objects.count() == 0


@pytest.mark.custom_user
def test_unknown_user_type_for_invitation(as_user, published):
    response = as_user("user").post(BASE + "send-invitation/", {"email": "a@example.com", "user_type": "Pilot"},
                                    format="json")
    assert response.status_code == 400 and "Unknown user type" in response.json()["user_type"][0]


def test_too_many_user_ids(as_user, settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MAX_USER_IDS": 3}
    response = as_user("staff").post(BASE + "send-notification-to-users/",
                                     {"user_ids": [1, 2, 3, 4], "subject": "s", "message": "m"}, format="json")
    assert response.status_code == 400 and response.json()["user_ids"] == ["At most 3 user ids per request."]


def test_unknown_ids_are_reported(as_user, make_user, published):
    user = make_user()
    response = as_user("staff").post(BASE + "send-notification-to-users/",
                                     {"user_ids": [user.pk, 888888], "subject": "s", "message": "m"}, format="json")
    assert response.status_code == 400 and "888888" in response.json()["user_ids"][0]


def test_resend_verification_for_a_verified_user(make_user, published):
    from django_async_email.accounts.verification import mark_verified

    user = make_user()
    mark_verified(user)
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(BASE + "resend-verification/")
    assert response.status_code == 400 and "already verified" in response.json()["detail"]


# --- enumeration ------------------------------------------------------------------------

def _reset_response(address):
    response = APIClient().post(BASE + "request-password-reset/", {"email": address}, format="json")
    headers = {k: v for k, v in response.items() if k.lower() != "date"}
    return response.status_code, headers, response.content


def test_password_reset_answers_the_same_bytes_for_every_account_state(make_user, published, email_backend):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_user(email="active@example.com")
    make_user(email="inactive@example.com", is_active=False)
    unusable = make_user(email="unusable@example.com")
    unusable.set_unusable_password()
    unusable.save()
    answers, queries = [], []
    for address in ("active@example.com", "nobody@example.com", "inactive@example.com", "unusable@example.com"):
        with CaptureQueriesContext(connection) as ctx:
            answers.append(_reset_response(address))
        # Same statements for every state (only the address and ids differ): no lookup here.
        queries.append([re.sub(r'"s\d+_x\d+"', "SP", q["sql"].split(" VALUES")[0].split(" WHERE")[0])
                        for q in ctx.captured_queries])
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0] == 202 and RESET_REQUESTED.encode() in answers[0][2]
    assert all(q == queries[0] for q in queries), queries
    assert not any("testapp_user" in sql or "auth_user" in sql for sql in queries[0])
    # A failing email backend changes nothing either: sending happens in the worker.
    email_backend("no.such.Backend")
    assert _reset_response("active@example.com") == answers[0]


def test_throttled_reset_requests_look_the_same_for_existing_and_unknown_addresses(make_user, settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"password_reset_address": "2/hour"}}
    make_user(email="active@example.com")
    for address in ("active@example.com", "nobody@example.com"):
        for _ in range(2):
            assert _reset_response(address)[0] == 202
    known, unknown = _reset_response("active@example.com"), _reset_response("nobody@example.com")
    assert known[0] == unknown[0] == 429
    assert known[2] == unknown[2]
    assert {k: v for k, v in known[1].items() if k != "Retry-After"} == \
           {k: v for k, v in unknown[1].items() if k != "Retry-After"}


# --- throttling -------------------------------------------------------------------------

def test_reset_is_throttled_per_address_with_retry_after(settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"password_reset_address": "3/hour"}}
    codes = [_reset_response("Victim@example.com")[0] for _ in range(3)]
    status, headers, _body = _reset_response("victim@EXAMPLE.com")  # same address, other case
    assert codes == [202, 202, 202] and status == 429
    assert 0 < int(headers["Retry-After"]) <= 3600
    assert _reset_response("other@example.com")[0] == 202


def test_reset_is_throttled_per_ip(settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"password_reset_ip": "2/minute"}}
    assert [_reset_response(f"a{i}@example.com")[0] for i in range(3)] == [202, 202, 429]


def test_throttling_can_be_switched_off(settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_ENABLED": False,
                            "THROTTLE_RATES": {"password_reset_address": "1/hour"}}
    assert [_reset_response("a@example.com")[0] for _ in range(3)] == [202, 202, 202]


def test_invitations_are_throttled_per_user(make_user, settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"invitation_user": "2/hour"}}
    client = APIClient()
    client.force_authenticate(make_user())
    codes = [client.post(BASE + "send-invitation/", {"email": f"i{i}@example.com", "user_type": "Artist"},
                         format="json").status_code for i in range(3)]
    assert codes == [202, 202, 429]
    other = APIClient()
    other.force_authenticate(make_user())
    assert other.post(BASE + "send-invitation/", {"email": "j@example.com", "user_type": "Artist"},
                      format="json").status_code == 202


def test_notifications_are_throttled_per_admin(as_user, make_user, settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"notification_admin": "1/hour"}}
    staff = as_user("staff")
    body = {"user_ids": [make_user().pk], "subject": "s", "message": "m"}
    assert staff.post(BASE + "send-notification-to-users/", body, format="json").status_code == 202
    assert staff.post(BASE + "send-notification-to-users/", body, format="json").status_code == 429


def test_resend_verification_is_throttled_per_user(make_user, settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"verification_user": "1/hour"}}
    client = APIClient()
    client.force_authenticate(make_user())
    assert [client.post(BASE + "resend-verification/").status_code for _ in range(2)] == [202, 429]


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_requests_stay_within_the_limit(settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"password_reset_address": "5/hour"}}
    barrier = threading.Barrier(20)
    codes = []
    lock = threading.Lock()

    def request():
        from django.db import connection

        barrier.wait()
        try:
            code = APIClient().post(BASE + "request-password-reset/", {"email": "race@example.com"},
                                    format="json").status_code
        finally:
            connection.close()
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=request) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [202] * 5 + [429] * 15
    assert OutboxEmail.objects.count() == 5


# --- system status -------------------------------------------------------------------------

def test_system_status(as_user, make_user, published, settings):
    from django_async_email import email_utils

    if settings.USE_MAILERS:
        settings.MAILERS = {"default": {**settings.MAILERS["default"], "OPTIONS": {"password": "s3cret-password"}}}
    else:
        settings.EMAIL_HOST_PASSWORD = "s3cret-password"
    email_utils.send_welcome_email(make_user())
    response = as_user("staff").get(BASE + "system-status/")
    assert response.status_code == 200
    data = response.json()
    assert data["email_backend"] == "django.core.mail.backends.locmem.EmailBackend"
    assert data["configuration"]["ok"] is True
    assert data["queues"] == ["high", "normal", "low"]
    assert data["broker"]["transport"] == settings.CELERY_BROKER_URL.split("://")[0]
    assert data["broker"]["reachable"] is True
    assert set(data["broker"]["queue_depths"]) == {"high", "normal", "low"}
    assert data["emails"]["last_hour"]["queued"] == 1 and data["emails"]["last_day"]["sent"] == 0
    assert isinstance(data["workers"], dict)
    assert set(data["queues_without_consumer"]) <= {"high", "normal", "low"}
    text = response.content.decode()
    assert "s3cret-password" not in text and "guest" not in text


# --- schema ---------------------------------------------------------------------------------

def test_openapi_schema_describes_every_endpoint_and_is_valid(settings):
    if not settings.HAVE_SPECTACULAR:
        pytest.skip("drf-spectacular is not installed in this environment")
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    paths = schema["paths"]
    for endpoint in MATRIX:
        assert BASE + endpoint in paths, endpoint
    reset = paths[BASE + "request-password-reset/"]["post"]
    assert set(reset["responses"]) >= {"202", "400"}
    assert "PasswordResetRequest" in str(reset["requestBody"])
    assert "email" in schema["components"]["schemas"]["PasswordResetRequest"]["properties"]
    notify = paths[BASE + "send-notification-to-users/"]["post"]
    assert "user_ids" in str(schema["components"]["schemas"]) and "202" in notify["responses"]


def test_a_basic_auth_username_with_a_nul_is_refused_not_a_server_error(api):
    import base64

    credentials = base64.b64encode(b"ad\x00min:secret").decode()
    response = api.post(BASE + "send-notification-to-users/", {"user_ids": [1], "subject": "s", "message": "m"},
                        format="json", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code in (401, 403)
