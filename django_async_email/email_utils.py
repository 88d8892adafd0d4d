"""The public Python API, with the names and signatures of the system it generalises.

Every function validates its input first (raising ``InvalidEmailInput`` naming the bad
argument, before anything is written), writes outbox rows in the caller's transaction,
publishes the task when that transaction commits, and returns the Celery task id.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import router, transaction

from . import signals, validation
from .conf import app_settings
from .exceptions import InvalidEmailInput
from .models import Broadcast, Invitation, Kind, OutboxEmail
from .publishing import new_message_id, new_task_id, publish_on_commit
from .tasks import BATCH_TASK_NAMES, TASK_FOR_KIND, send_bulk_notification_email_task
from .tokens import invitation_expiry
from .users import email_field_name, email_of, user_types_in_use

__all__ = [
    "send_verification_email",
    "send_password_reset_email",
    "send_invitation_email",
    "send_notification_to_users",
    "send_notification_to_user_types",
    "send_welcome_email",
    "request_password_reset",
    "send_password_changed_email",
    "broadcast_progress",
    "cancel_broadcast",
    "validate_email_configuration",
    "send_test_email",
]


def _db():
    return router.db_for_write(OutboxEmail)


def _queue_rows(kind: str, rows: list[OutboxEmail]) -> str:
    """Write ``rows`` and publish the task for ``kind`` after commit; returns its id."""
    task, queue_class = TASK_FOR_KIND[kind]
    task_id = new_task_id()
    for row in rows:
        row.task_id = task_id
    using = _db()
    with transaction.atomic(using=using):
        if len(rows) == 1:
            rows[0].save(using=using)
        else:
            OutboxEmail.objects.using(using).bulk_create(rows)
            if rows and rows[0].pk is None:
                # Databases without RETURNING (old SQLite) leave pks unset; read them back.
                ids = dict(
                    OutboxEmail.objects.using(using)
                    .filter(message_id__in=[r.message_id for r in rows])
                    .values_list("message_id", "pk")
                )
                for row in rows:
                    row.pk = row.id = ids[row.message_id]
        ids = [row.pk for row in rows]
        # Batch tasks take a list of row ids; the single-email tasks take one id.
        payload = ids if task.name in BATCH_TASK_NAMES else ids[0]
        publish_on_commit(task, args=[payload], queue_class=queue_class, task_id=task_id, using=using)
        # Announced once the rows are really there: a rollback announces nothing.
        transaction.on_commit(
            lambda: signals.email_queued.send_robust(sender=OutboxEmail, emails=rows, task_id=task_id), using=using
        )
    return task_id


def _user_row(kind: str, user, *, base_url, email_type: str, extra_context=None) -> OutboxEmail:
    if user is None or getattr(user, "pk", None) is None:
        raise InvalidEmailInput("user", "A saved user is required.", code="required")
    address = validation.clean_address("user", email_of(user))
    context = {"base_url": validation.clean_base_url("base_url", base_url), **(extra_context or {})}
    return OutboxEmail(
        kind=kind, email_type=email_type, recipient=address, user=user, context=context,
        message_id=new_message_id(),
    )


def send_verification_email(user, base_url=None) -> str:
    """Queue an email-verification email to ``user`` (queue: high)."""
    row = _user_row(Kind.VERIFICATION, user, base_url=base_url, email_type="verification")
    return _queue_rows(Kind.VERIFICATION, [row])


def send_password_reset_email(user, base_url=None) -> str:
    """Queue a password reset email to ``user`` (queue: high). The token is minted by the worker."""
    return _queue_rows(
        Kind.PASSWORD_RESET, [_user_row(Kind.PASSWORD_RESET, user, base_url=base_url, email_type="password_reset")]
    )


def request_password_reset(email, base_url=None) -> str:
    """Queue a password reset for whoever owns ``email``, without saying whether anyone does.

    The request path does the same work for every address (validate, one INSERT, one
    publish): the account lookup happens in the worker, which sends to the address stored
    on the account, or records the row as ``suppressed`` when there is none.
    """
    address = validation.clean_address("email", email)
    row = OutboxEmail(
        kind=Kind.PASSWORD_RESET, email_type="password_reset", recipient=address,
        context={"base_url": validation.clean_base_url("base_url", base_url), "lookup": True},
        message_id=new_message_id(),
    )
    return _queue_rows(Kind.PASSWORD_RESET, [row])


def send_password_changed_email(user, base_url=None) -> str:
    """Queue the "your password was changed" notice to ``user`` (queue: high)."""
    return _queue_rows(
        Kind.PASSWORD_CHANGED,
        [_user_row(Kind.PASSWORD_CHANGED, user, base_url=base_url, email_type="password_changed")],
    )


def send_welcome_email(user, base_url=None) -> str:
    """Queue a welcome email to ``user`` (queue: normal)."""
    return _queue_rows(Kind.WELCOME, [_user_row(Kind.WELCOME, user, base_url=base_url, email_type="welcome")])


def send_invitation_email(inviter, invitee_email, user_type, base_url=None) -> str:
    """Invite ``invitee_email`` to join as ``user_type`` (queue: normal).

    Any earlier open invitation to the same address is revoked, so only the newest link works.
    """
    from django.utils import timezone

    address = validation.clean_address("invitee_email", invitee_email)
    user_type = validation.clean_user_type("user_type", user_type) if user_types_in_use() else (user_type or "")
    base = validation.clean_base_url("base_url", base_url)
    user_model = get_user_model()
    if user_model._default_manager.filter(**{f"{email_field_name()}__iexact": address}).exists():
        raise InvalidEmailInput("invitee_email", "An account with this email address already exists.", code="exists")
    using = _db()
    with transaction.atomic(using=using):
        now = timezone.now()
        Invitation.objects.using(using).filter(
            email__iexact=address, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.using(using).create(
            inviter=inviter if getattr(inviter, "pk", None) else None,
            email=address, user_type=user_type, expires_at=invitation_expiry(now),
        )
        inviter_name = ""
        if inviter is not None and getattr(inviter, "pk", None):
            inviter_name = (getattr(inviter, "get_full_name", lambda: "")() or email_of(inviter) or str(inviter))
        row = OutboxEmail(
            kind=Kind.INVITATION, email_type="invitation", recipient=address, invitation=invitation,
            context={"base_url": base, "inviter_name": inviter_name, "user_type": user_type},
            message_id=new_message_id(),
        )
        return _queue_rows(Kind.INVITATION, [row])


def _clean_notification(subject, message, email_type, template_name, context):
    return {
        "subject": validation.clean_subject("subject", subject),
        "message": validation.clean_message("message", message),
        "email_type": validation.clean_email_type("email_type", email_type),
        "template_name": validation.clean_template_name("template_name", template_name) or "",
        "context": validation.clean_context("context", context),
    }


def send_notification_to_users(user_ids, subject, message, email_type="notification", template_name=None,
                               context=None) -> str:
    """Queue one notification to each of ``user_ids`` (queue: normal); one task, one connection.

    Unknown ids and users without an email address are reported, not dropped. A list longer
    than ``BULK_CHUNK_SIZE`` goes the bulk way instead: one broadcast row, one fan-out task
    on the low queue, and the ids are not looked up on the request path (inactive, unknown
    and address-less users are skipped by the fan-out and absent from the broadcast total).
    """
    fields = _clean_notification(subject, message, email_type, template_name, context)
    ids = validation.clean_user_ids("user_ids", user_ids)
    if len(ids) > app_settings.BULK_CHUNK_SIZE:
        return _queue_broadcast(fields, user_ids=ids)
    users = list(get_user_model()._default_manager.filter(pk__in=ids))
    found = {str(u.pk) for u in users}
    unknown = [i for i in ids if str(i) not in found]
    if unknown:
        raise InvalidEmailInput("user_ids", f"Unknown user id(s): {', '.join(map(str, unknown))}.", code="unknown")
    no_address = [u.pk for u in users if not email_of(u)]
    if no_address:
        raise InvalidEmailInput(
            "user_ids", f"User(s) without an email address: {', '.join(map(str, no_address))}.", code="no_address"
        )
    with transaction.atomic(using=_db()):
        broadcast = Broadcast.objects.using(_db()).create(user_ids=[u.pk for u in users], total=len(users), **fields)
        rows = [
            OutboxEmail(
                kind=Kind.NOTIFICATION, email_type=fields["email_type"], recipient=email_of(u), user=u,
                broadcast=broadcast, message_id=new_message_id(),
            )
            for u in users
        ]
        task_id = _queue_rows(Kind.NOTIFICATION, rows)
        Broadcast.objects.using(_db()).filter(pk=broadcast.pk).update(task_id=task_id)
    return task_id


def send_notification_to_user_types(user_types, subject, message, email_type="notification", template_name=None,
                                    context=None) -> list[str]:
    """Queue a notification to every active user of each type (queue: low); one task id per type.

    The request path writes one broadcast row per type and publishes its fan-out task; it
    never loads the recipients.
    """
    fields = _clean_notification(subject, message, email_type, template_name, context)
    types = validation.clean_user_types("user_types", user_types)
    with transaction.atomic(using=_db()):
        return [_queue_broadcast(fields, user_types=[user_type]) for user_type in types]


def _queue_broadcast(fields: dict, *, user_types=None, user_ids=None) -> str:
    """One broadcast row and one fan-out task (queue: low); recipients are never loaded here."""
    using = _db()
    task_id = new_task_id()
    with transaction.atomic(using=using):
        broadcast = Broadcast.objects.using(using).create(
            user_types=user_types or [], user_ids=user_ids, task_id=task_id, **fields
        )
        publish_on_commit(
            send_bulk_notification_email_task, args=[broadcast.pk], queue_class="low", task_id=task_id, using=using
        )
    return task_id


def _find_broadcast(task_id_or_pk) -> Broadcast:
    broadcast = Broadcast.objects.filter(task_id=str(task_id_or_pk)).first()
    if broadcast is None and str(task_id_or_pk).isdigit():
        broadcast = Broadcast.objects.filter(pk=int(task_id_or_pk)).first()
    if broadcast is None:
        raise InvalidEmailInput("task_id", "No broadcast with this id.", code="unknown")
    return broadcast


def broadcast_progress(task_id_or_pk) -> dict:
    """Progress of a broadcast (by the task id its send function returned, or its pk):
    ``{"state", "total", "sent", "failed", "cancelled", "pending"}``."""
    return _find_broadcast(task_id_or_pk).progress()


def cancel_broadcast(task_id_or_pk) -> int:
    """Stop a broadcast: rows not yet sent are cancelled (rows being sent finish). Returns how many."""
    from .broadcasts import cancel_broadcast as cancel

    return cancel(_find_broadcast(task_id_or_pk).pk)


def send_test_email(address, subject=None, message=None) -> str:
    """Queue a test notification to any address (queue: normal), to check the whole path."""
    address = validation.clean_address("address", address)
    site = app_settings.site_name or "django-async-email"
    fields = {
        "subject": validation.clean_subject("subject", subject or f"Test email from {site}"),
        "message": validation.clean_message(
            "message", message or "This is a test email. If you can read it, delivery works."),
        "email_type": "test",
    }
    with transaction.atomic(using=_db()):
        broadcast = Broadcast.objects.using(_db()).create(user_ids=[], total=1, **fields)
        row = OutboxEmail(kind=Kind.NOTIFICATION, email_type="test", recipient=address, broadcast=broadcast,
                          message_id=new_message_id())
        return _queue_rows(Kind.NOTIFICATION, [row])


def validate_email_configuration() -> dict:
    """The system checks' findings as a dict: ``{"ok": bool, "errors": [...], "warnings": [...], ...}``."""
    from .checks import configuration_report

    return configuration_report()

