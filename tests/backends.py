"""Email backends the tests point workers at."""

from django.core.mail.backends.base import BaseEmailBackend


class AlwaysRaisingBackend(BaseEmailBackend):
    """A relay that is down: every send raises."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("the mail relay is down")
