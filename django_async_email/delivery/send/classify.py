"""Sort send errors into transient (retry later) and permanent (fail now)."""

from __future__ import annotations

import smtplib
import socket
import ssl

TRANSIENT = "transient"
PERMANENT = "permanent"


def _smtp_code_class(code) -> str:
    try:
        code = int(code)
    except (TypeError, ValueError):
        return PERMANENT
    return TRANSIENT if 400 <= code < 500 else PERMANENT


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an email API's error carries (django-anymail's ``AnymailRequestsAPIError``
    has ``status_code``; a ``requests`` ``HTTPError`` has ``response.status_code``), if any."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def classify_send_error(exc: BaseException) -> str:
    """``TRANSIENT`` for SMTP 4xx, HTTP 408/429/5xx and network trouble; ``PERMANENT`` for SMTP
    5xx, other HTTP 4xx and anything else."""
    status = http_status(exc)
    if status is not None:
        # An HTTP email backend's answer about this one message. It is an OSError through
        # requests, but not network trouble: a 422 will not change on retry.
        return TRANSIENT if status in (408, 429) or status >= 500 else PERMANENT
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        # Retry only if every refusal was temporary; a 5xx for a recipient will not change.
        return TRANSIENT if codes and all(_smtp_code_class(c) == TRANSIENT for c in codes) else PERMANENT
    if isinstance(exc, smtplib.SMTPResponseException):
        return _smtp_code_class(exc.smtp_code)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, socket.timeout)):
        return TRANSIENT
    if isinstance(exc, (smtplib.SMTPException, ssl.SSLCertVerificationError)):
        # No reply code (e.g. STARTTLS or AUTH not supported) or an untrusted certificate:
        # configuration problems that a retry will not fix.
        return PERMANENT
    if isinstance(exc, OSError):
        # Connection refused/reset, unreachable network, DNS failure: the server may come back.
        return TRANSIENT
    return PERMANENT


def breaks_connection(exc: BaseException) -> bool:
    """Whether the connection is unusable after ``exc`` (so the rest of the batch waits for a retry)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) or http_status(exc) is not None:
        # An HTTP API answered about one message: the next message can still go.
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421 or isinstance(exc, smtplib.SMTPConnectError)
    return isinstance(exc, (smtplib.SMTPServerDisconnected, OSError))


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items()]
        return f"Recipients refused: {'; '.join(parts)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
