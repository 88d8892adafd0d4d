"""Notification categories: what a user can turn off, by the email type of a notification.

``ASYNC_EMAIL['CATEGORIES']`` maps each category key to a label, the email types in it and
its default (on unless it says ``"default": False``); every other email type falls in the
``DEFAULT_CATEGORY``, which is on by default and labelled "Other notifications" unless the
setting lists it. Account emails (verification, reset, password changed, invitation,
welcome) are in no category: nobody can unsubscribe from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from ..conf import SETTINGS_NAME, app_settings
from ..models import Kind


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    #: Whether a user with no preference row receives it.
    default: bool = True


def categories() -> list[Category]:
    """Every category, in the order the setting lists them, the catch-all last."""
    configured = [
        Category(key, str(spec.get("label", key)), bool(spec.get("default", True)))
        for key, spec in app_settings.CATEGORIES.items()
    ]
    if app_settings.DEFAULT_CATEGORY not in app_settings.CATEGORIES:
        configured.append(Category(app_settings.DEFAULT_CATEGORY, str(_("Other notifications")), True))
    return configured


def category_named(key: str) -> Category | None:
    return next((c for c in categories() if c.key == key), None)


#: ``(email type, language) -> Category``: a bulk chunk asks once per message, and the
#: answer only changes with the settings (cleared on ``setting_changed``) or the language.
_BY_TYPE: dict[tuple[str, str | None], Category] = {}


def category_for(email_type: str) -> Category:
    """The category of a notification of ``email_type``."""
    key = (email_type, translation.get_language())
    category = _BY_TYPE.get(key)
    if category is None:
        if len(_BY_TYPE) > 1024:  # email types are few; a caller inventing them is not
            _BY_TYPE.clear()
        category = _BY_TYPE[key] = _look_up(email_type)
    return category


@receiver(setting_changed)
def _forget_categories(*, setting, **kwargs):
    if setting == SETTINGS_NAME:
        _BY_TYPE.clear()


def _look_up(email_type: str) -> Category:
    for key, spec in app_settings.CATEGORIES.items():
        if email_type in spec.get("email_types", ()):
            return Category(key, str(spec.get("label", key)), bool(spec.get("default", True)))
    default = category_named(app_settings.DEFAULT_CATEGORY)
    assert default is not None  # categories() always has it
    return default


def unsubscribable(kind: str, user_id) -> bool:
    """Whether a row of ``kind`` to this user carries unsubscribe headers and links: a
    notification to a user (a test email to a bare address names nobody to unsubscribe)."""
    return kind == Kind.NOTIFICATION and user_id is not None
