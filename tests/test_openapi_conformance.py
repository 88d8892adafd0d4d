"""schemathesis against the package's OpenAPI schema: generated requests to every
endpoint, anonymous and as staff, never get a 5xx, and every answer is one the schema
describes (status code, content type, body)."""

import base64
import os

import pytest

pytest.importorskip("rest_framework")
pytest.importorskip("drf_spectacular")
schemathesis = pytest.importorskip("schemathesis")

from django.core.wsgi import get_wsgi_application  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]
# Per operation and per caller; raise it for a deeper run (the suite runs once per stage).
EXAMPLES = settings(max_examples=int(os.environ.get("ASYNC_EMAIL_TEST_SCHEMA_EXAMPLES", "12")), deadline=None,
                    suppress_health_check=list(HealthCheck))


@schema.parametrize()
@EXAMPLES
@pytest.mark.django_db(transaction=True)
def test_anonymous_requests_get_answers_the_schema_describes(case, published):
    case.call_and_validate(checks=CHECKS)


@pytest.fixture
def staff_credentials(django_user_model):
    if not django_user_model.objects.filter(username="schema-admin").exists():
        django_user_model.objects.create_user(username="schema-admin", email="schema-admin@example.com",
                                              password="schema admin passphrase", is_staff=True)
    token = base64.b64encode(b"schema-admin:schema admin passphrase").decode()
    return {"Authorization": f"Basic {token}"}


@schema.parametrize()
@EXAMPLES
@pytest.mark.django_db(transaction=True)
def test_staff_requests_get_answers_the_schema_describes(case, published, staff_credentials):
    case.call_and_validate(headers=staff_credentials, checks=CHECKS)
