"""Signals announcing what happened to outbox rows. All are sent with ``send_robust``.

Receivers get ``sender`` (the ``OutboxEmail`` class) and ``emails``, a list of
``OutboxEmail`` rows, so a bulk chunk costs one signal, not one per recipient.
"""

from django.dispatch import Signal

#: Rows were written and their task will be published when the transaction commits.
#: Arguments: ``sender``, ``emails``, ``task_id``.
email_queued = Signal()

#: The backend accepted these rows' messages. Arguments: ``sender``, ``emails``.
email_sent = Signal()

#: These rows failed for good (permanent error, or retries used up); ``email.last_error`` says why.
#: Arguments: ``sender``, ``emails``.
email_failed = Signal()

#: These rows failed transiently and will be retried after ``countdown`` seconds.
#: Arguments: ``sender``, ``emails``, ``countdown``.
email_retrying = Signal()
