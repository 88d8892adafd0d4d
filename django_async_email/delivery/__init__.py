"""The worker side, as its steps: claim -> build -> send -> record.

``pipeline`` runs the steps for a task's rows: ``claim`` takes rows nobody holds,
``build`` renders them into messages (message classes, template rendering, links, token
minting), ``send`` puts them on a connection (the connection, the SMTP fast path, the
sender, error classification), and ``record`` writes each row's outcome and the retry
policy decides when a transient failure is tried again. ``sweeper`` recovers rows whose
task was lost; ``address_lookup`` turns an email asked for by address (a reset, a resent
verification) into rows for the matching accounts.
"""
