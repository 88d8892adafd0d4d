"""Insert one fan-out chunk of outbox rows without preparing every field of every row in Python.

``bulk_create`` builds a model instance per row and runs each of its 18 fields through
``pre_save`` and ``get_db_prep_save``. In the benchmark that held a pool process for
2.8 s per 10,000 recipients, a fifth of the worker's CPU for a broadcast
(docs/benchmarks.md). The rows of a chunk differ only in user, address and Message-ID, so
Django prepares every other column once, from one template instance (a callable default
is called once for the chunk), and the INSERT repeats those values. It returns the new
ids (``RETURNING``), so the send task's ids need no second query.

Used where the database can return ids from a multi-row INSERT (PostgreSQL, SQLite 3.35+,
MariaDB 10.5+); elsewhere ``insert_chunk`` returns ``None`` and the caller uses
``bulk_create``. A row that already exists raises ``IntegrityError``, as ``bulk_create``
would.
"""

from __future__ import annotations

import re

from django.db import connections

#: PostgreSQL's limit on parameters in one statement is 65,535.
MAX_PARAMS = 65535
BOUNDED_TEXT = re.compile(r"^(?:varchar|character varying|char|character)\(\d+\)$")


def insert_chunk(template, varying: tuple[str, ...], values: list[tuple], *, using: str) -> list[int] | None:
    """Insert one row per tuple of ``values`` (one value per field named in ``varying``),
    every other column as on ``template`` (an unsaved instance); return the new ids."""
    connection = connections[using]
    if not values or not connection.features.can_return_rows_from_bulk_insert:
        return None
    opts = template._meta
    fields = [f for f in opts.concrete_fields if f is not opts.pk and not getattr(f, "generated", False)]
    for field in fields:
        # A constant is prepared once and shared by every row: a unique column would clash.
        if field.unique and field.name not in varying:
            raise ValueError(f"insert_chunk: the unique field {field.name!r} must be one of the varying fields.")
    # Per column: (None, its value prepared once, exactly as bulk_create would prepare it for
    # every row; auto_now and auto_now_add take the time here), or (position in a tuple of
    # ``values``, the field that prepares it).
    columns = [
        (varying.index(f.name), f) if f.name in varying
        else (None, f.get_db_prep_save(f.pre_save(template, True), connection))
        for f in fields
    ]
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
    # Written here: Django's helper for it is private and was renamed in 6.1.
    returning = f"RETURNING {quote(opts.pk.column)}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _insert_unnest(cursor, connection, head, returning, fields, columns, values)
        return _insert_values(cursor, connection, head, returning, fields, columns, values)


def _insert_unnest(cursor, connection, head, returning, fields, columns, values) -> list[int]:
    """PostgreSQL: one array per varying column, so a handful of parameters whatever the
    chunk size (psycopg parses a query's placeholders in Python, at about 10 us each)."""

    def cast(field, suffix=""):
        # Typed, so that a NULL or a string constant lands in any column type. Never to
        # varchar(n): an explicit cast cuts a longer value short without an error, where
        # the INSERT's own conversion to the column type refuses it, as bulk_create would.
        db_type = BOUNDED_TEXT.sub("text", field.db_type(connection) or "")
        return f"CAST(%s AS {db_type}{suffix})" if db_type else "%s"

    varying = sorted(((p, f) for p, f in columns if p is not None), key=lambda pair: pair[0])
    select = ", ".join(cast(field) if position is None else f"v{position}"
                       for field, (position, _item) in zip(fields, columns, strict=True))
    arrays = ", ".join(cast(f, "[]") for _p, f in varying)
    aliases = ", ".join(f"v{p}" for p, _f in varying)
    params = [item for position, item in columns if position is None]
    params += [[f.get_db_prep_save(row[p], connection) for row in values] for p, f in varying]
    cursor.execute(f"{head}SELECT {select} FROM UNNEST({arrays}) AS v({aliases}) {returning}", params)
    return [pk for (pk,) in cursor.fetchall()]


def _insert_values(cursor, connection, head, returning, fields, columns, values) -> list[int]:
    """Other databases: a multi-row VALUES list, split to stay under the parameter limit."""
    batch = min(len(values), max(connection.ops.bulk_batch_size(fields, values), 1), MAX_PARAMS // len(fields))
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    ids: list[int] = []
    for start in range(0, len(values), batch):
        rows = values[start:start + batch]
        params = []
        for row in rows:
            for position, item in columns:
                params.append(item if position is None else item.get_db_prep_save(row[position], connection))
        cursor.execute(f"{head}VALUES {', '.join([row_sql] * len(rows))} {returning}", params)
        ids.extend(pk for (pk,) in cursor.fetchall())
    return ids
