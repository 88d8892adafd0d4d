"""Store the messages a host hands to ``OutboxBackend``: one ``raw`` row each, sent as built.

Everything Django's ``EmailMessage`` and ``EmailMultiAlternatives`` send is kept (subject,
bodies, alternatives, subtypes, encoding, From, To, Cc, Bcc, Reply-To, extra headers and
attachments), in the caller's transaction; the send task is published when it commits.
Attachment bytes go to ``ASYNC_EMAIL['ATTACHMENT_STORAGE']``. A message this cannot
keep faithfully is refused, never sent degraded: a subclass that builds its own MIME (it
overrides ``message()`` or one of its steps) raises ``UnstorableMessage``; an attachment
of a kind Django does not send, or one past the size limits, ``InvalidEmailInput`` on
``attachments`` (``outbox.attachments``).
"""

from __future__ import annotations

from email.utils import getaddresses

from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import transaction

from ..conf import app_settings
from ..exceptions import UnstorableMessage
from ..models import Kind, OutboxEmail, StoredMessage
from .attachments import attachment_parts, save_attachments
from .publishing import new_message_id
from .rows import outbox_db, queue_rows
from .schedule import Schedule, clean_schedule

#: The methods that decide what Django sends; a subclass that replaces one builds a
#: message this module cannot rebuild from the attributes.
MIME_METHODS = ("message", "recipients", "_create_message", "_create_attachments", "_create_mime_attachment",
                "_create_attachment", "_create_alternatives")


def check_storable(message) -> None:
    """``UnstorableMessage`` unless ``message`` is sent as Django's own classes send it."""
    if not isinstance(message, EmailMessage):
        raise UnstorableMessage(f"{type(message).__name__} is not a django.core.mail.EmailMessage.")
    for name in MIME_METHODS:
        method = getattr(type(message), name, None)
        stock = {getattr(base, name, None) for base in (EmailMessage, EmailMultiAlternatives)}
        if method not in stock:
            raise UnstorableMessage(
                f"{type(message).__module__}.{type(message).__qualname__} overrides {name}(), so the outbox cannot "
                f"store it and send the same bytes later. Send it with a backend of its own "
                f"(get_connection(ASYNC_EMAIL['EMAIL_BACKEND'])), or build it as an EmailMultiAlternatives.")


def first_address(message) -> str:
    """The address the row shows and the screen step checks first."""
    addresses = [address for _name, address in getaddresses(list(message.recipients())) if address]
    return addresses[0] if addresses else ""


def message_schedule(message) -> Schedule:
    """A message's window, from the attributes anymail also reads: ``message.send_at``
    (and this package's ``message.expires_at``), aware datetimes."""
    return clean_schedule(getattr(message, "send_at", None), getattr(message, "expires_at", None))


def store_messages(messages) -> int:
    """One ``raw`` row per message that has recipients, one send task per ``BULK_CHUNK_SIZE``
    of them with the same schedule; how many.

    A call with more messages than one chunk (``send_mass_mail`` of a newsletter) is bulk:
    its tasks go to the low queue, as a broadcast's chunks do, so they neither hold one
    worker process for the whole call while the others idle nor delay the normal queue's
    mail (docs/benchmarks.md measured a 10,000-message call sent as one task at 0.76 times
    the throughput of calls of 500).
    """
    checked = []
    for message in messages:
        check_storable(message)
        schedule = message_schedule(message)
        if first_address(message):  # Django's SMTP backend skips a message with no recipients too
            checked.append((message, attachment_parts(message.attachments), schedule))
    if not checked:
        return 0
    rows = [OutboxEmail(kind=Kind.RAW, recipient=first_address(message)[:254],
                        message_id=str(message.extra_headers.get("Message-ID") or new_message_id()))
            for message, _parts, _schedule in checked]
    by_schedule: dict[Schedule, list[OutboxEmail]] = {}
    for row, (_message, _parts, schedule) in zip(rows, checked, strict=True):
        by_schedule.setdefault(schedule, []).append(row)
    size = app_settings.BULK_CHUNK_SIZE
    bulk = len(rows) > size
    using = outbox_db()
    with transaction.atomic(using=using):
        for schedule, scheduled_rows in by_schedule.items():
            for start in range(0, len(scheduled_rows), size):
                # published when the caller's transaction commits
                queue_rows(Kind.RAW, scheduled_rows[start:start + size], schedule, bulk=bulk)
        stored = StoredMessage.objects.using(using).bulk_create([
            StoredMessage(email=row, **message_fields(message))
            for row, (message, _parts, _schedule) in zip(rows, checked, strict=True)])
        for message_row, (_message, parts, _schedule) in zip(stored, checked, strict=True):
            save_attachments(parts, using=using, message=message_row)
    return len(checked)


def message_fields(message) -> dict:
    return {
        "subject": str(message.subject or ""),
        "body": str(message.body or ""),
        "alternatives": [[str(content), mimetype] for content, mimetype in getattr(message, "alternatives", [])],
        "content_subtype": message.content_subtype,
        "mixed_subtype": getattr(message, "mixed_subtype", "mixed"),  # gone in Django 6.1
        "alternative_subtype": getattr(message, "alternative_subtype", "alternative"),
        "encoding": str(message.encoding or ""),
        "from_email": str(message.from_email or ""),
        "to": [str(a) for a in message.to],
        "cc": [str(a) for a in message.cc],
        "bcc": [str(a) for a in message.bcc],
        "reply_to": [str(a) for a in message.reply_to],
        "headers": [[str(k), str(v)] for k, v in message.extra_headers.items() if str(k).lower() != "message-id"],
    }
