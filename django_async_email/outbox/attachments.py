"""Attachments kept for later sending: checked against the size limits when queuing, their
bytes written to ``ASYNC_EMAIL['ATTACHMENT_STORAGE']`` (a ``STORAGES`` alias).

Used for the messages a host hands to ``OutboxBackend`` (one set per stored message) and
for the ``attachments=`` of a notification (one set per broadcast, read once per batch by
every recipient's message; ``delivery.build.attachments``).
"""

from __future__ import annotations

from email.message import Message

from django.core.files.base import ContentFile

from ..conf import app_settings
from ..exceptions import InvalidEmailInput
from ..models import StoredAttachment

#: ``(filename, mimetype, the part's own headers, bytes)``: what is stored per attachment
Part = tuple[str, str, list, bytes]


def attachment_parts(attachments) -> list[Part]:
    """Each attachment as a ``Part``; ``InvalidEmailInput`` on ``attachments`` for one the
    outbox cannot keep, or past ``ATTACHMENT_MAX_BYTES`` / ``MESSAGE_MAX_BYTES``.

    A ``(filename, content, mimetype)`` attachment keeps its content as bytes (text as
    UTF-8: Django decodes text attachments given as bytes itself). A MIME part the host
    built (an inline image with a ``Content-ID``) is kept whole, headers and encoded body,
    and rebuilt as it was.
    """
    parts = []
    total = 0
    for position, attachment in enumerate(attachments or []):
        if isinstance(attachment, Message):
            data = attachment.as_bytes()
            headers = [[k, str(v)] for k, v in attachment.items()]
            filename, mimetype = attachment.get_filename() or "", attachment.get_content_type()
        elif isinstance(attachment, tuple | list) and len(attachment) == 3:
            filename, content, mimetype = attachment
            if isinstance(content, str):
                content = content.encode("utf-8")
            if not isinstance(content, bytes):
                raise InvalidEmailInput("attachments", f"Attachment {position} ({filename!r}) has content of type "
                                                       f"{type(content).__name__}; give bytes or str.")
            data, headers = content, []
            filename, mimetype = str(filename or ""), str(mimetype or "")
        else:
            raise InvalidEmailInput("attachments", f"Attachment {position} is a {type(attachment).__name__}; the "
                                                   f"outbox stores (filename, content, mimetype) attachments and "
                                                   f"MIME parts.")
        if len(data) > app_settings.ATTACHMENT_MAX_BYTES:
            raise InvalidEmailInput("attachments", f"Attachment {filename or position!r} is {len(data):,} bytes; "
                                    f"the limit is ATTACHMENT_MAX_BYTES ({app_settings.ATTACHMENT_MAX_BYTES:,}).")
        total += len(data)
        parts.append((filename, mimetype, headers, data))
    if total > app_settings.MESSAGE_MAX_BYTES:
        raise InvalidEmailInput("attachments", f"The attachments are {total:,} bytes together; the limit is "
                                f"MESSAGE_MAX_BYTES ({app_settings.MESSAGE_MAX_BYTES:,}).")
    return parts


def save_attachments(parts: list[Part], *, using: str, message=None, broadcast=None) -> None:
    """Write ``parts`` to the storage and one ``StoredAttachment`` row each, for a stored
    ``message`` or a ``broadcast``."""
    for position, (filename, mimetype, headers, data) in enumerate(parts):
        attachment = StoredAttachment(message=message, broadcast=broadcast, position=position, filename=filename[:255],
                                      mimetype=mimetype[:255], part_headers=headers, size=len(data))
        attachment.file.save(filename or f"attachment-{position}", ContentFile(data), save=False)
        attachment.save(using=using)
