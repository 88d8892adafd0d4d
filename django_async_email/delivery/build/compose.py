"""Build step: turn one claimed row into a ready ``EmailMultiAlternatives``, or say why not.

The context comes from the broadcast, the row and the adapter; invitation tokens are minted
here (only their hash is stored) and the signed link tokens by the message classes, so no
token exists before the email is rendered.
"""

from __future__ import annotations

from functools import lru_cache

from django.utils.functional import Promise, lazy
from django.utils.translation import gettext, gettext_lazy

from ...accounts import tokens
from ...accounts.categories import category_for, unsubscribable
from ...accounts.unsubscribe_tokens import make_preferences_token, make_unsubscribe_token
from ...accounts.users import email_of, greeting_name, language_of, user_type_of
from ...adapter import get_adapter
from ...conf import app_settings
from ...models import Invitation, Kind, OutboxEmail
from ..headers import (
    LINE_BREAK, HeaderError, address_lines, check_name, header_lines, parse_mailbox, quoted_mailbox,
)
from .attachments import attach
from .links import page_link

#: Kinds whose link token is bound to the account's current address.
ADDRESS_BOUND_KINDS = (Kind.VERIFICATION, Kind.PASSWORD_RESET)
#: Fields of the message's own MIME structure: an adapter header cannot replace them.
MIME_HEADERS = frozenset({"mime-version", "content-type", "content-transfer-encoding"})
#: Address fields Django writes from an extra header as it is, without encoding.
RAW_ADDRESS_HEADERS = frozenset({"to", "cc", "bcc", "reply-to", "sender"})


def stale_recipient(email: OutboxEmail) -> str:
    """Why a row must not be sent any more ("" if it may be).

    A verification or reset link is minted for the address the account has now; sending it
    to the address the row was queued for, after the account changed address, would hand
    the old address a link that acts on the new one.
    """
    if email.kind not in ADDRESS_BOUND_KINDS or email.user_id is None and email.context.get("lookup"):
        return ""
    if email.user is None:
        return "The account no longer exists."
    if email_of(email.user).casefold() != email.recipient.casefold():
        return "The account's email address changed after this email was queued."
    return ""


def mint_invitation_token(email: OutboxEmail) -> str:
    """Mint a fresh invitation token and store only its hash; the raw token goes in the email."""
    token = tokens.make_invitation_token()
    # A deleted invitation leaves invitation_id None, which Django matches to no row; the plugin rejects None.
    Invitation.objects.filter(pk=email.invitation_id).update(  # type: ignore[misc]  # Django allows pk=None
        token_hash=tokens.hash_invitation_token(token))
    return token


def message_context(email: OutboxEmail, adapter) -> dict:
    """The template context of a row: the caller's extra context, then ours, then the adapter's."""
    broadcast = email.broadcast
    # The caller's extra context first, so it can add variables but not replace ours.
    context = dict(broadcast.context) if broadcast is not None else {}
    context.update(
        user=email.user, recipient=email.recipient, email_type=email.email_type,
        site_name=app_settings.site_name, greeting_name=greeting_name(email.user), **email.context,
    )
    if broadcast is not None:
        context.update(subject=broadcast.subject, message=broadcast.message, email_type=broadcast.email_type)
    if email.kind == Kind.INVITATION:
        context["token"] = mint_invitation_token(email)
    if unsubscribable(email.kind, email.user_id):
        context.update(unsubscribe_context(email.user, email.email_type))
    context.update(adapter.get_extra_context(email, email.user))
    return context


def unsubscribe_context(user, email_type: str, *, preview: bool = False) -> dict:
    """``unsubscribe_url``, ``preferences_url`` and ``email_category`` for a notification to ``user``.

    The URLs are ``None`` when the host mounted no link pages and set no URL templates;
    then the email carries no unsubscribe headers either (check ``W013`` says so).
    """
    category = category_for(email_type)
    base_url = app_settings.BASE_URL
    unsubscribe_token = "preview-token" if preview else make_unsubscribe_token(user, category)
    preferences_token = "preview-token" if preview else make_preferences_token(user)
    return {
        "email_category": category,
        "unsubscribe_url": page_link("UNSUBSCRIBE_URL", base_url, unsubscribe_token),
        "preferences_url": page_link("PREFERENCES_URL", base_url, preferences_token),
        # The footer's words, translated when the template prints them (in the recipient's
        # language): a {% blocktranslate %} per message cost more than the rest of the footer.
        "unsubscribe_text": unsubscribe_text(category.label),
        "preferences_text": PREFERENCES_TEXT,
    }


unsubscribe_text = lazy(lambda label: gettext("Unsubscribe from %(category)s") % {"category": label}, str)
PREFERENCES_TEXT = gettext_lazy("Email preferences")


#: RFC 8058: the link a mailbox provider POSTs to, and the body it posts.
ONE_CLICK_POST = "List-Unsubscribe=One-Click"


def unsubscribe_headers(context: dict, headers: dict) -> dict:
    """``headers`` with ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for a notification
    that has an unsubscribe URL; an adapter that set its own ``List-Unsubscribe`` keeps it."""
    url = context.get("unsubscribe_url")
    if not url or any(name.lower() == "list-unsubscribe" for name in headers):
        return headers
    return {**headers, "List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK_POST}


def build_message(email: OutboxEmail, adapter=None, connection=None, *, context: dict | None = None):
    """Render one row into a ready-to-send ``EmailMultiAlternatives`` (``context``: its
    ``message_context``, when the caller already made it)."""
    adapter = adapter or get_adapter()
    # The context first (the adapter's get_extra_context, the invitation token), then the class.
    context = message_context(email, adapter) if context is None else context
    message = new_message(email, adapter, context, connection)
    message.render()
    return finish_message(email, message, context, adapter)


def new_message(email: OutboxEmail, adapter, context: dict, connection=None):
    """The row's message object, not rendered yet."""
    user = email.user
    template_name = email.broadcast.template_name if email.broadcast is not None else None
    return adapter.get_message_class(email.kind)(
        context=context,
        template_name=template_name or email.context.get("template_name"),
        user_type=user_type_of(user) or email.context.get("user_type", ""),
        language=language_of(user),
        connection=connection,
    )


def finish_message(email: OutboxEmail, message, context: dict, adapter):
    """A rendered message with its recipient, From, headers and the broadcast's files."""
    headers = dict(adapter.get_extra_headers(email))
    if unsubscribable(email.kind, email.user_id):
        headers = unsubscribe_headers(context, headers)
    address_message(message, email.recipient, from_email=adapter.get_from_email(email), bcc=adapter.get_bcc(email),
                    headers=headers, message_id=email.message_id)
    # The broadcast's files, read once for the batch (``attachments.load_broadcast_attachments``).
    attach(message, getattr(email, "broadcast_files", []))
    return message


def address_message(message, recipient: str, *, from_email, bcc, headers, message_id: str) -> None:
    """Give a rendered message its recipient, the adapter's From, BCC and headers, and the row's
    Message-ID; ``HeaderError`` if no send path can write one of them (or the subject) correctly."""
    message.to = [recipient]
    message.bcc = list(bcc)
    message.from_email = checked_from(str(from_email) if isinstance(from_email, Promise) else from_email)
    # A message class may set its own Reply-To; it is checked like the From.
    message.reply_to = [checked_from(mailbox, "Reply-To") for mailbox in message.reply_to]
    message.extra_headers = {**checked_headers(headers), "Message-ID": message_id}
    checked_header("Subject", message.subject)  # refuses text no header can carry (a lone surrogate)


# The checks are pure functions of their text, and a batch repeats the same From, subject
# and headers: each distinct value is checked once.
@lru_cache(maxsize=1024)
def checked_from(value, field: str = "From") -> str:
    """The adapter's From as sent, or ``HeaderError`` if no send path can write it correctly.

    Only ``address`` and ``Display Name <address>`` (the name quoted or not) are sent; the
    package encodes the name, so text that looks like an encoded word stays text. A name
    with special characters is quoted, so Django's envelope and every backend read the
    same mailbox as the fast path. Anything else is refused here, once, with this error:
    the email package's parser fails on some of it with a TypeError, and Django would
    write the rest as it is.
    """
    mailbox = parse_mailbox(value) if isinstance(value, str) else None
    if mailbox is None:
        raise HeaderError(f"The {field} address {value!r} is not one the package can send: give 'address' or "
                          f"'Display Name <address>' with an ASCII address.")
    address_lines(field, [mailbox])  # refuses a name no header can carry (a lone surrogate)
    return quoted_mailbox(value)


def checked_headers(headers) -> dict[str, str]:
    """The adapter's extra headers as sent, or ``HeaderError`` naming the first one that cannot be.

    Refused: a name that is not a field name (RFC 5322: printable ASCII but ':'); two names
    that differ only in case (one field: the fast path would keep one and Django both, so
    neither is chosen); a MIME structure field; a value no header can carry correctly. An
    adapter ``Message-ID`` is dropped: a row's Message-ID is always its own.
    """
    checked: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, value in dict(headers).items():
        key = check_name(name).lower()
        if key in seen:
            raise HeaderError(f"The headers {seen[key]!r} and {name!r} are one field (header names are "
                              f"case-insensitive); give one of them.")
        seen[key] = name
        if key in MIME_HEADERS:
            raise HeaderError(f"The {name} header is the message's own; an adapter cannot set it.")
        if key == "message-id":
            continue
        text = str(value)  # as Django writes it
        checked[name] = checked_from(text) if key == "from" else checked_header(name, text)
    return checked


@lru_cache(maxsize=1024)
def checked_header(name: str, text: str) -> str:
    """``text`` if a header ``name`` can carry it on both paths, else ``HeaderError``."""
    if name.lower() in RAW_ADDRESS_HEADERS:
        if "=?" in text or LINE_BREAK.search(text):
            raise HeaderError(f"The {name} header cannot contain line breaks or encoded words: {text[:80]!r}.")
    else:
        header_lines(name, text)
    return text
