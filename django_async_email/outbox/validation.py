"""Input checks for the Python API: each raises ``InvalidEmailInput`` naming the argument."""

from __future__ import annotations

import json
import re

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.template import TemplateDoesNotExist
from django.template.loader import select_template

from ..accounts.addresses import normalise_address
from ..accounts.users import allowed_user_types
from ..conf import app_settings
from ..email_templates import TEMPLATE_DIR, missing_parts
from ..exceptions import InvalidEmailInput

MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit less the angle brackets
MAX_LOCAL_PART_LENGTH = 64
MAX_SUBJECT_LENGTH = 255
MAX_EMAIL_TYPE_LENGTH = 64

_email_validator = EmailValidator()
#: C0 control characters but TAB, LF and CR: RFC 2045 forbids NUL in a body, and none of
#: them is allowed in HTML.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _check_text(field: str, value: str, what: str) -> None:
    """Refuse text an email cannot carry: lone surrogates (not Unicode) and control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEmailInput(field, f"{what} is not valid Unicode text (it has a lone surrogate).") from None
    control = CONTROL_CHARACTERS.search(value)
    if control:
        raise InvalidEmailInput(field, f"{what} cannot contain the control character {control[0]!r}.")


def clean_address(field: str, value) -> str:
    """The address in the package's normal form (``accounts.addresses``), if it is valid."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmailInput(field, "An email address is required.", code="required")
    if "\r" in value or "\n" in value:
        raise InvalidEmailInput(field, "An email address cannot contain line breaks.")
    address = normalise_address(value)
    if "\r" in address or "\n" in address:
        raise InvalidEmailInput(field, "An email address cannot contain line breaks.")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise InvalidEmailInput(field, f"An email address can have at most {MAX_ADDRESS_LENGTH} characters.")
    local_part = address.rpartition("@")[0]
    if len(local_part) > MAX_LOCAL_PART_LENGTH:
        raise InvalidEmailInput(
            field, f"The part before '@' can have at most {MAX_LOCAL_PART_LENGTH} characters."
        )
    try:
        _email_validator(address)
    except ValidationError:
        raise InvalidEmailInput(field, "Enter a valid email address.") from None
    return address


def clean_subject(field: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmailInput(field, "A subject is required.", code="required")
    if "\r" in value or "\n" in value:
        raise InvalidEmailInput(field, "A subject cannot contain line breaks.")
    _check_text(field, value, "A subject")
    if len(value) > MAX_SUBJECT_LENGTH:
        raise InvalidEmailInput(field, f"A subject can have at most {MAX_SUBJECT_LENGTH} characters.")
    return value.strip()


def clean_message(field: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmailInput(field, "A message is required.", code="required")
    _check_text(field, value, "A message")
    return value


def clean_email_type(field: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmailInput(field, "An email type is required.", code="required")
    if len(value) > MAX_EMAIL_TYPE_LENGTH or any(ch in value for ch in "\r\n"):
        raise InvalidEmailInput(field, f"An email type is one line of at most {MAX_EMAIL_TYPE_LENGTH} characters.")
    _check_text(field, value, "An email type")
    return value.strip()


def clean_user_type(field: str, value) -> str:
    allowed = allowed_user_types()
    if not isinstance(value, str) or not value:
        raise InvalidEmailInput(field, "A user type is required.", code="required")
    if value not in allowed:
        choices = ", ".join(allowed) if allowed else "none are configured"
        raise InvalidEmailInput(field, f"Unknown user type {value!r}; allowed: {choices}.", code="invalid_choice")
    return value


def clean_user_types(field: str, values) -> list[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple, set, frozenset)):
        raise InvalidEmailInput(field, "Give a list of user types.")
    if not values:
        raise InvalidEmailInput(field, "Give at least one user type.", code="required")
    cleaned = [clean_user_type(field, value) for value in values]
    return list(dict.fromkeys(cleaned))


def clean_user_ids(field: str, values) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise InvalidEmailInput(field, "Give a list of user ids.")
    ids = list(values)
    if not ids:
        raise InvalidEmailInput(field, "Give at least one user id.", code="required")
    if any(isinstance(v, bool) or not isinstance(v, (int, str)) for v in ids):
        raise InvalidEmailInput(field, "User ids must be integers or strings.")
    return list(dict.fromkeys(ids))


def template_name_candidates(value: str) -> list[str]:
    """Where a template name is looked for: a bare name (``welcome``) in the package's
    template folder first (``django_async_email/welcome.html``), then as given."""
    if "/" in value:
        return [value]
    bare = value if value.endswith((".html", ".txt")) else f"{value}.html"
    return [f"{TEMPLATE_DIR}/{bare}", value]


def clean_template_name(field: str, value) -> str | None:
    """The template's full name, if it exists and defines an email's parts."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidEmailInput(field, "A template name is a string.")
    try:
        template = select_template(template_name_candidates(value))
    except TemplateDoesNotExist:
        raise InvalidEmailInput(field, f"Template {value!r} does not exist.", code="invalid_choice") from None
    name = template.template.name
    missing = missing_parts(template)
    if missing:
        raise InvalidEmailInput(
            field,
            f"Template {name!r} has no {' and no '.join(missing)} block, so its email would be empty. "
            "Extend 'django_async_email/base.html' and fill subject and text_content (see the templates docs).",
            code="not_an_email_template",
        )
    return name


def clean_context(field: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEmailInput(field, "Context is a dict.")
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        raise InvalidEmailInput(field, "Context values must be JSON-serialisable.") from None
    try:
        text.encode("utf-8")  # every key and string value, however deep
    except UnicodeEncodeError:
        raise InvalidEmailInput(field, "Context keys and values must be valid Unicode text "
                                       "(one has a lone surrogate).") from None
    return value


def clean_base_url(field: str, value) -> str:
    """The configured ``BASE_URL``, or ``value`` if it is that or in ``ALLOWED_BASE_URLS``.

    Links are never built from a request's Host header, so callers cannot point them at
    another host.
    """
    configured = app_settings.BASE_URL.rstrip("/")
    if value in (None, ""):
        return configured
    if not isinstance(value, str):
        raise InvalidEmailInput(field, "A base URL is a string.")
    candidate = value.rstrip("/")
    allowed = {configured} | {url.rstrip("/") for url in app_settings.ALLOWED_BASE_URLS}
    if candidate not in allowed:
        raise InvalidEmailInput(
            field, "This base URL is not allowed; add it to ASYNC_EMAIL['ALLOWED_BASE_URLS'].",
            code="not_allowed",
        )
    return candidate
