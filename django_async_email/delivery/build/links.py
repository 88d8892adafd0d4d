"""Links in emails, built only from the configured base URL (or an allowed one) and a template."""

from functools import lru_cache
from urllib.parse import quote

from django.conf import settings
from django.urls import NoReverseMatch, get_urlconf, reverse

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
    around = page_path_around_token(PAGE_URL_NAMES[setting_name], get_urlconf() or getattr(settings, "ROOT_URLCONF", None))
    if around is None:
        return None
    return f"{base_url.rstrip('/')}{around[0]}{token}{around[1]}"


#: Stands for the token while the page's path is reversed once (tokens are URL-safe base64
#: and ':', which reverse() leaves as they are, so putting one in its place is the same).
TOKEN_SLOT = "TOKEN-SLOT"


@lru_cache(maxsize=64)
def page_path_around_token(url_name: str, urlconf: str | None) -> tuple[str, str] | None:
    """The page's path before and after its token, reversed once per URLconf (a bulk chunk
    would otherwise reverse twice per message); ``None`` when the URLconf has no such page,
    or there is no URLconf at all (a worker with settings of its own)."""
    if urlconf is None:
        return None
    try:
        path = reverse(url_name, args=[TOKEN_SLOT], urlconf=urlconf)
    except NoReverseMatch:
        return None
    before, _slot, after = path.partition(TOKEN_SLOT)
    return before, after
