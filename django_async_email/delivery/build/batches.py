"""Build step for a batch of notification rows: one template render for the rows that share
it, where ``batch_render`` proves every recipient gets the bytes of a render of their own.

Rows share a render when they belong to one broadcast and are rendered with one template
in one language (the same user type and language). The package's own message class is
required (``NotificationEmail``): an adapter's class may render in ways this cannot see.
Any row the batch way does not take, or any error on it, goes back to ``build_message``
row by row, with the context already made, so a failure is recorded per row as before.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

from django.utils import translation

from ...accounts.users import language_of, user_type_of
from ...models import Kind, OutboxEmail
from .batch_render import fill, plan_batch
from .compose import finish_message, message_context, new_message
from .messages import NotificationEmail

logger = logging.getLogger(__name__)

#: Fewer rows than this are rendered one by one: planning costs about one render.
MIN_BATCH = 3


def build_batch(rows: list[OutboxEmail], *, adapter, connection) -> tuple[dict[int, object], dict[int, dict]]:
    """``(messages, contexts)`` by row id: the messages built by a shared render, and the
    contexts made for rows left to ``build_message`` (so they are not made twice)."""
    if adapter.get_message_class(Kind.NOTIFICATION) is not NotificationEmail:
        return {}, {}
    groups: dict[tuple, list[OutboxEmail]] = {}
    for row in rows:
        if row.kind == Kind.NOTIFICATION and row.broadcast is not None:
            key = (row.broadcast.pk, user_type_of(row.user), language_of(row.user))
            groups.setdefault(key, []).append(row)
    built: dict[int, object] = {}
    contexts: dict[int, dict] = {}
    for group in groups.values():
        if len(group) >= MIN_BATCH:
            build_group(group, adapter, connection, built, contexts)
    return built, contexts


def build_group(group: list[OutboxEmail], adapter, connection, built: dict, contexts: dict) -> None:
    """Build ``group`` with one render into ``built``, or leave its contexts in ``contexts``."""
    try:
        made = [message_context(row, adapter) for row in group]
    except Exception:  # build_message reports it per row
        return
    contexts.update({row.pk: context for row, context in zip(group, made, strict=True)})
    try:
        messages = [new_message(row, adapter, context, connection) for row, context in zip(group, made, strict=True)]
        language = messages[0].language
        done = {}
        # All of it in the recipients' language: a lazy value is translated when filled in.
        with translation.override(language) if language else nullcontext():
            data = [message.render_data() for message in messages]
            template = messages[0].get_template()
            plan = plan_batch(template, data)
            if plan is None:
                return
            pieces = plan.render()
            for row, message, context, values in zip(group, messages, made, data, strict=True):
                message.apply_parts(fill(pieces, values))
                done[row.pk] = finish_message(row, message, context, adapter)
    except Exception:
        # A template or header error: each row is built again alone, and fails alone.
        logger.debug("Shared render of broadcast %s failed; rendering its rows one by one",
                     group[0].broadcast_id, exc_info=True)
        return
    built.update(done)
    for pk in done:
        contexts.pop(pk, None)
