"""Account state: what the package knows about the host's users.

``users`` reads the host's user model, ``verification`` keeps which address was verified,
``recipients`` decides who receives a notification, ``tokens`` makes and checks link
tokens, and ``flows`` completes verification, reset and invitation. Nothing here sends or
queues email; the layers above do, so this layer never depends on the outbox or a broker.
"""
