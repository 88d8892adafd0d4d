"""Who receives a notification: one rule for every audience and every path.

A notification goes to users who are active, have an email address and, unless
``ASYNC_EMAIL['BULK_INCLUDE_UNVERIFIED']`` is on, have verified it. The same queryset
condition serves the request path (a short list of ids, looked up at once), the fan-out
(a long list, read a chunk of ids at a time) and user types (keyset-paginated), so which
path a list takes never changes who gets the email.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from ..conf import app_settings
from .users import email_field_name, users_of_types
from .verification import verified_q


def receiving(users):
    """Narrow a user queryset to those who may receive a notification."""
    field = email_field_name()
    users = users.filter(is_active=True).exclude(**{field: ""}).exclude(**{f"{field}__isnull": True})
    if not app_settings.BULK_INCLUDE_UNVERIFIED:
        users = users.filter(verified_q())
    return users


def recipients_with_ids(ids):
    """The users of ``ids`` who may receive a notification."""
    return receiving(get_user_model()._default_manager.filter(pk__in=list(ids)))


def recipients_of_types(user_types):
    """Every user of ``user_types`` who may receive a notification."""
    return receiving(users_of_types(user_types))
