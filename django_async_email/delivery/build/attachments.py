"""Attachments back from ``ATTACHMENT_STORAGE``, byte for byte, for stored messages and for
every recipient's email of a broadcast that has some.

A broadcast's files are read once per batch, with one query, and only for batches whose
broadcast has any (``Broadcast.attachment_count``, which the claim's join already
carries): a chunk of a notification without attachments pays nothing.
"""

from __future__ import annotations

from email import message_from_bytes
from email.message import MIMEPart
from email.mime.base import MIMEBase
from email.policy import compat32, default

import django

from ...models import OutboxEmail, StoredAttachment

#: Django 6.0 takes the modern ``email.message.MIMEPart`` in ``attach()`` and deprecates the
#: legacy ``MIMEBase``, which Django 4.2 to 5.2 require.
MODERN_PARTS = django.VERSION >= (6, 0)

#: an attachment as read: ``(filename, bytes, mimetype)`` or a MIME part's bytes, headers included
Loaded = tuple[str | None, bytes, str | None] | bytes


def read_attachment(attachment: StoredAttachment) -> Loaded:
    with attachment.file.open("rb") as f:
        data = f.read()
    if attachment.part_headers:
        return data
    return (attachment.filename or None, data, attachment.mimetype or None)


def attach(message, loaded: list[Loaded]) -> None:
    """Attach what ``read_attachment`` read to ``message`` (a MIME part is parsed afresh for
    each message, so no two messages share a part object)."""
    for item in loaded:
        if isinstance(item, bytes):
            message.attach(mime_part(item))
        else:
            message.attach(*item)


def mime_part(data: bytes) -> MIMEBase | MIMEPart:
    """A stored MIME part as the part Django's ``attach()`` takes, headers and body as they were."""
    if MODERN_PARTS:
        return message_from_bytes(data, policy=default)  # an EmailMessage, which is a MIMEPart
    part = message_from_bytes(data, policy=compat32)
    part.__class__ = MIMEBase  # MIMEBase adds nothing to Message but its constructor
    return part  # type: ignore[return-value]


def load_broadcast_attachments(rows: list[OutboxEmail]) -> None:
    """Give each row whose broadcast has attachments the files read (``row.broadcast_files``)."""
    wanted = {row.broadcast.pk for row in rows if row.broadcast is not None and row.broadcast.attachment_count}
    if not wanted:
        return
    files: dict[int | None, list[Loaded]] = {}
    for attachment in StoredAttachment.objects.filter(broadcast_id__in=wanted).order_by("broadcast_id", "position"):
        files.setdefault(attachment.broadcast_id, []).append(read_attachment(attachment))
    for row in rows:
        if row.broadcast_id in files:
            row.broadcast_files = files[row.broadcast_id]  # type: ignore[attr-defined]
