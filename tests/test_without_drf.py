"""Without Django REST Framework the package works; only its urls ask for the extra."""

import importlib
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured


def _hide_drf(monkeypatch):
    for name in list(sys.modules):
        if name == "rest_framework" or name.startswith("rest_framework.") or name.startswith("django_async_email.api"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "django_async_email.urls", raising=False)
    monkeypatch.setitem(sys.modules, "rest_framework", None)  # makes "import rest_framework" fail


def test_including_the_urls_without_drf_names_the_extra(monkeypatch):
    _hide_drf(monkeypatch)
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'django-email-outbox\[drf\]'"):
        importlib.import_module("django_async_email.urls")


@pytest.mark.django_db
def test_python_api_tasks_admin_and_checks_work_without_drf(monkeypatch, make_user, published):
    _hide_drf(monkeypatch)
    from django.core import checks

    from django_async_email import admin, email_utils, tasks  # noqa: F401
    from django_async_email.web import link_urls  # noqa: F401

    assert "rest_framework" not in {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
    assert email_utils.send_welcome_email(make_user())
    assert checks.run_checks(tags=["django_async_email"]) == []
