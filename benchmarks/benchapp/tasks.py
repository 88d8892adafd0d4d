"""The competitors, written as a host project would write them with each tool.

Every scenario starts from one published task (the request path publishes it and returns),
reads the recipients of one user type from the database and renders the same message
(subject, plain text and HTML with the user's name) from Django templates.

- naive: what the seed's hand-written system does: the fan-out publishes one task per 50
  user ids, and each of those sends every email with ``EmailMultiAlternatives.send()``,
  which opens and closes an SMTP connection per email.
- django-celery-email: the host renders the messages and hands them to
  ``CeleryEmailBackend``, which publishes one ``send_emails`` task per
  ``CELERY_EMAIL_CHUNK_SIZE`` messages; each of those sends its chunk over one connection.
- django-post-office: the host queues the emails with ``mail.send_many`` and a database
  ``EmailTemplate``; post-office's Celery integration (``CELERY_ENABLED``) publishes its
  ``send_queued_mail`` task, which sends the queue in batches with its thread pool.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

PAGE_SIZE = 500
POST_OFFICE_TEMPLATE = "bench_notification"


def recipients(user_type: str):
    return (
        get_user_model()._default_manager.filter(user_type=user_type, is_active=True)
        .exclude(email="")
        .order_by("pk")
    )


def pages(queryset, size: int = PAGE_SIZE):
    """The queryset in pages of ``size`` by primary key, never all of it in memory."""
    last = None
    while True:
        page = list((queryset if last is None else queryset.filter(pk__gt=last))[:size])
        if not page:
            return
        last = page[-1].pk
        yield page


def context_for(user, subject: str, message: str) -> dict:
    return {"user": user, "subject": subject, "message": message, "site_name": "ZamIO"}


def render_message(user, subject: str, message: str, connection=None) -> EmailMultiAlternatives:
    context = context_for(user, subject, message)
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("bench/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        connection=connection,
    )
    email.attach_alternative(render_to_string("bench/notification.html", context), "text/html")
    return email


# --- naive: one task per 50 ids, one connection per email -------------------------------------

@shared_task(name="bench.naive_fan_out")
def naive_fan_out(user_type: str, subject: str, message: str, chunk_size: int = 50):
    ids = list(recipients(user_type).values_list("pk", flat=True))
    for start in range(0, len(ids), chunk_size):
        naive_send_chunk.delay(ids[start:start + chunk_size], subject, message)
    return len(ids)


@shared_task(name="bench.naive_send_chunk")
def naive_send_chunk(user_ids: list[int], subject: str, message: str):
    sent = 0
    for user in get_user_model()._default_manager.filter(pk__in=user_ids).order_by("pk"):
        sent += render_message(user, subject, message).send()
    return sent


# --- django-celery-email ----------------------------------------------------------------------

@shared_task(name="bench.celery_email_fan_out")
def celery_email_fan_out(user_type: str, subject: str, message: str):
    backend = get_connection("djcelery_email.backends.CeleryEmailBackend")
    count = 0
    for page in pages(recipients(user_type)):
        backend.send_messages([render_message(user, subject, message) for user in page])
        count += len(page)
    return count


# --- django-post-office -----------------------------------------------------------------------

@shared_task(name="bench.post_office_fan_out")
def post_office_fan_out(user_type: str, subject: str, message: str):
    from post_office import mail
    from post_office.models import EmailTemplate

    template = EmailTemplate.objects.get(name=POST_OFFICE_TEMPLATE, language="")
    count = 0
    for page in pages(recipients(user_type)):
        mail.send_many([
            {"recipients": [user.email], "sender": settings.DEFAULT_FROM_EMAIL, "template": template,
             "context": context_for(user, subject, message)}
            for user in page
        ])
        count += len(page)
    return count
