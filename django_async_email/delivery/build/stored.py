"""Build step for ``raw`` rows: the host's message again, from what ``outbox.stored_messages`` kept.

No template and no adapter: the host built this message (with ``send_mail()``, a form,
another app) and it goes out as built, with the row's Message-ID. Attachments come back
from ``ATTACHMENT_STORAGE`` byte for byte; a MIME part the host built (an inline image
with a Content-ID) comes back whole.
"""

from __future__ import annotations

from email.utils import getaddresses

from django.core.mail import EmailMultiAlternatives

from ...accounts.suppression import suppression_key
from ...models import Kind, OutboxEmail, StoredMessage
from .attachments import attach, read_attachment


def load_stored_messages(rows: list[OutboxEmail]) -> None:
    """Give each ``raw`` row its stored message and attachments: two queries for a batch
    that has any, none for the rest (a bulk chunk of notifications pays nothing)."""
    raw = {row.pk: row for row in rows if row.kind == Kind.RAW}
    if raw:
        for stored in StoredMessage.objects.filter(email_id__in=list(raw)).prefetch_related("attachments"):
            raw[stored.email_id].stored_message = stored


def build_stored(email: OutboxEmail, connection=None, *, withheld=frozenset()) -> EmailMultiAlternatives:
    """The row's message, ready to send; ``withheld`` addresses (suppressed) are left out."""
    stored: StoredMessage = email.stored_message

    def kept(addresses):  # ``withheld`` holds the screen step's suppression keys
        return [a for a in addresses if suppression_key(_address(a)) not in withheld]

    message = EmailMultiAlternatives(
        subject=stored.subject, body=stored.body, from_email=stored.from_email or None,
        to=kept(stored.to), cc=kept(stored.cc), bcc=kept(stored.bcc), reply_to=stored.reply_to,
        headers={**dict(stored.headers), "Message-ID": email.message_id}, connection=connection,
    )
    for content, mimetype in stored.alternatives:
        message.attach_alternative(content, mimetype)
    message.content_subtype = stored.content_subtype
    # Django 6.1 dropped these undocumented attributes (and refuses a message that sets
    # them); before it, they are class attributes the stubs omit.
    if hasattr(EmailMultiAlternatives, "mixed_subtype"):
        message.mixed_subtype = stored.mixed_subtype  # type: ignore[attr-defined]
    if hasattr(EmailMultiAlternatives, "alternative_subtype"):
        message.alternative_subtype = stored.alternative_subtype  # type: ignore[attr-defined]
    message.encoding = stored.encoding or None
    attach(message, [read_attachment(a) for a in stored.attachments.all()])
    return message


def _address(value: str) -> str:
    parsed = getaddresses([value])
    return parsed[0][1] if parsed else value

