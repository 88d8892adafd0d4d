"""Authentication classes of the test project."""

from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed


class NulSafeBasicAuthentication(BasicAuthentication):
    """DRF's Basic authentication, refusing credentials with a NUL character.

    Django's ModelBackend looks the username up as given, and PostgreSQL cannot take a NUL
    in a text parameter: with DRF's own BasicAuthentication, such a header is a 500 on any
    endpoint (schemathesis sent one). A host on PostgreSQL that keeps Basic auth needs the
    same guard; docs/security.md says so.
    """

    def authenticate_credentials(self, userid, password, request=None):
        if "\x00" in userid or "\x00" in password:
            raise AuthenticationFailed("Invalid username/password.")
        return super().authenticate_credentials(userid, password, request)
