"""Adapters used by the tests, as a host would write them."""

from django_async_email.adapter import DefaultAdapter


class CopyToAuditAdapter(DefaultAdapter):
    def get_extra_headers(self, email):
        return {"X-Audit": "1"}

    def get_bcc(self, email):
        return ["audit@zamio.test"]


class InvitedUsersAreStaffAdapter(DefaultAdapter):
    def create_invited_user(self, invitation, password, **profile_fields):
        user = super().create_invited_user(invitation, password, **profile_fields)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        return user
