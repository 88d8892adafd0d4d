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


class ConfigurableAdapter(DefaultAdapter):
    """From and extra headers as a test sets them on the class; ``{first_name}`` in the From
    is the recipient's first name (the greeting's), as a host might put it there."""

    from_email: str | None = None
    extra_headers: dict = {}

    def get_from_email(self, email):
        if self.from_email is None:
            return super().get_from_email(email)
        first_name = email.user.first_name if email.user is not None else ""
        return self.from_email.replace("{first_name}", first_name)

    def get_extra_headers(self, email):
        return dict(self.extra_headers)
