"""Links in emails, built only from the configured base URL (or an allowed one) and a template."""

from urllib.parse import quote

from django.urls import NoReverseMatch, reverse

from ...conf import app_settings

#: The link pages' URL names (``web.link_urls``) of the package's own endpoints.
PAGE_URL_NAMES = {"UNSUBSCRIBE_URL": "django_async_email_pages:unsubscribe",
                  "PREFERENCES_URL": "django_async_email_pages:preferences-token"}


def build_link(setting_name: str, base_url: str, **params) -> str:
    """Fill the ``ASYNC_EMAIL[setting_name]`` template; parameters are URL-quoted."""
    template = getattr(app_settings, setting_name)
    quoted = {key: quote(str(value), safe="") for key, value in params.items()}
    return template.format(base_url=base_url.rstrip("/"), **quoted)


def page_link(setting_name: str, base_url: str, token: str) -> str | None:
    """A link to one of the package's own pages: ``ASYNC_EMAIL[setting_name]`` if set, else
    where the host's URLconf mounted ``web.link_urls``; ``None`` if it mounted none."""
    if getattr(app_settings, setting_name):
        return build_link(setting_name, base_url, token=token)
    try:
        path = reverse(PAGE_URL_NAMES[setting_name], args=[token])
    except NoReverseMatch:
        return None
    return base_url.rstrip("/") + path
