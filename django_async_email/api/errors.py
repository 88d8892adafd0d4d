"""The REST API's errors, all raised as Django REST framework exceptions.

Views raise the package's own errors (``InvalidEmailInput``, ``TokenError``) or DRF's;
``drf_error`` turns the former into the latter before DRF handles them, so a host's
``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` shapes every error of every endpoint, field
errors and token errors alike.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, ValidationError

from ..exceptions import InvalidEmailInput, TokenError


class InvalidToken(APIException):
    """A bad link token or one-time code: the same answer whatever was wrong with it."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = TokenError.public_message
    default_code = "invalid_token"


class AlreadyVerified(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Your email address is already verified."
    default_code = "already_verified"


def drf_error(exc: Exception, field_names: dict[str, str]) -> Exception:
    """``exc`` as a DRF exception; ``field_names`` maps Python argument names to request fields."""
    if isinstance(exc, InvalidEmailInput):
        return ValidationError({
            field_names.get(field, field): [ErrorDetail(message, code=error.code)
                                            for error in errors for message in error.messages]
            for field, errors in exc.error_dict.items()
        })
    if isinstance(exc, TokenError):
        return InvalidToken(detail=str(exc))
    return exc
