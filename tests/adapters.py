"""Adapters used by the tests, as a host would write them."""

from django_async_email.adapter import DefaultAdapter


class CopyToAuditAdapter(DefaultAdapter):
    def get_extra_headers(self, email):
        return {"X-Audit": "1"}

    def get_bcc(self, email):
        return ["audit@zamio.test"]
