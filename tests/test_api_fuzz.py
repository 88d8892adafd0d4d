"""Property-based fuzzing of every endpoint: arbitrary JSON bodies never produce a 5xx."""

import pytest

pytest.importorskip("rest_framework")

from django.core.cache import cache  # noqa: E402
from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient  # noqa: E402

pytestmark = pytest.mark.django_db

BASE = "/api/accounts/email/"
FIELDS = ["email", "user_type", "user_types", "user_ids", "subject", "message", "email_type", "uid", "token",
          "new_password", "password", "first_name", "last_name"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=10,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6) | json_values
ENDPOINTS = ["resend-verification/", "request-password-reset/", "send-invitation/", "send-notification-to-users/",
             "send-notification-to-user-type/", "verify-email/", "confirm-password-reset/", "accept-invitation/"]


@pytest.fixture
def staff_client(django_user_model):
    user = django_user_model.objects.create_user(username="fuzz-admin", email="fuzz@example.com",
                                                 password="x", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_no_body_causes_a_server_error(endpoint, staff_client, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_ENABLED": False}

    @hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=bodies)
    def run(body):
        cache.clear()
        response = staff_client.post(BASE + endpoint, body, format="json")
        assert response.status_code < 500, (body, response.content)
        assert response.status_code in (200, 201, 202, 400, 403), response.status_code

    run()


def test_non_json_bodies(staff_client, published):
    for endpoint in ENDPOINTS[1:]:  # resend-verification reads no body
        response = staff_client.post(BASE + endpoint, data=b"\xff\xfe{not json", content_type="application/json")
        assert response.status_code == 400
