"""The request side: validate, write outbox rows in the caller's transaction, publish on commit.

``kinds`` is the one table of which task delivers each kind on which queue; ``validation``
checks input, ``rows`` writes rows and announces them, ``publishing`` and ``routing`` put
tasks on queues, and ``invitations`` and ``broadcasts`` create what their emails need.
``fanout`` (with ``chunk_insert``) turns a broadcast into rows chunk by chunk; it runs in
a worker but does request-side work: it writes rows and publishes their send tasks.
"""
