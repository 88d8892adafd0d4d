"""Links in emails, built only from the configured base URL (or an allowed one) and a template."""

from urllib.parse import quote

from ...conf import app_settings


def build_link(setting_name: str, base_url: str, **params) -> str:
    """Fill the ``ASYNC_EMAIL[setting_name]`` template; parameters are URL-quoted."""
    template = getattr(app_settings, setting_name)
    quoted = {key: quote(str(value), safe="") for key, value in params.items()}
    return template.format(base_url=base_url.rstrip("/"), **quoted)
