"""The wheel carries what a host needs at run time: templates, migrations, translations."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_wheel_contents(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("django_email_outbox-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("base", "verification", "password_reset", "password_changed", "invitation", "notification",
                 "welcome"):
        assert f"django_async_email/templates/django_async_email/{kind}.html" in names
    for page in ("pages/verify_email.html", "previews/detail.html"):
        assert f"django_async_email/templates/django_async_email/{page}" in names
    assert "django_async_email/migrations/0001_initial.py" in names
    # The layers, and the marker that lets a host's type checker read the annotations.
    for module in ("outbox/kinds.py", "delivery/pipeline.py", "delivery/build/compose.py",
                   "delivery/send/wire.py", "accounts/flows.py", "web/link_urls.py", "api/urls.py"):
        assert f"django_async_email/{module}" in names
    assert "django_async_email/py.typed" in names
    assert "django_async_email/locale/fr/LC_MESSAGES/django.mo" in names
    assert "django_async_email/locale/fr/LC_MESSAGES/django.po" in names
    assert not any(name.startswith(("tests/", "example_project/")) for name in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    # Our own name: "django-async-email" on the package index is someone else's project.
    assert "\nName: django-email-outbox\n" in text
    assert "Requires-Dist: Django>=4.2" in text and "Requires-Dist: celery>=5.3" in text
    assert "Provides-Extra: drf" in text
