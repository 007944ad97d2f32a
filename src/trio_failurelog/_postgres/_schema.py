"""The ``memory_retrieval_failures`` table in PostgreSQL: its DDL and its checks.

The table is the reference application's PostgreSQL table, column for column,
so that either program can read and append to the other's rows. Everything
here is synchronous psycopg and runs on the writer's worker thread.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
import psycopg.errors

from .._errors import DatabaseSetupError, IncompatibleSchemaError
from .._table import COLUMNS, TABLE

__all__ = [
    "ADVISORY_CLASS",
    "COPY_BINARY_SQL",
    "COPY_SQL",
    "CREATE_PARTITIONED_TABLE",
    "CREATE_TABLE",
    "HAS_REFERENCE_TYPES",
    "INSERT_SQL",
    "PURGE_LOCK",
    "REFERENCE_TYPES",
    "SCHEMA_LOCK",
    "check_table",
    "ensure_schema",
    "purge_sql",
]

#: The first key of every advisory lock this library takes (``pg_advisory_*(int4, int4)``);
#: the second says what is locked. An arbitrary constant ("tfl" in ASCII).
ADVISORY_CLASS: Final = 0x74666C
#: Serialises creating the table, so that many processes starting at once on an
#: empty database do not race each other into a duplicate-object error.
SCHEMA_LOCK: Final = 1
#: Lets one process of a fleet purge at a time; the others skip that round.
PURGE_LOCK: Final = 2

COPY_SQL: Final = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN"
COPY_BINARY_SQL: Final = COPY_SQL + " (FORMAT BINARY)"
INSERT_SQL: Final = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)})"
)

# The reference application's columns after ``id``, as its PostgreSQL migration creates them.
_COLUMNS_DDL: Final = """
    conversation_id      BIGINT,
    turn_index           BIGINT NOT NULL DEFAULT 0,
    failure_type         TEXT   NOT NULL
        CHECK (failure_type IN ('no_hit', 'low_confidence', 'timeout', 'error')),
    retrieval_strategy   TEXT   NOT NULL,
    query_text           TEXT   NOT NULL,
    query_len            BIGINT NOT NULL DEFAULT 0,
    top_score            REAL,
    confidence_threshold REAL,
    result_count         BIGINT NOT NULL DEFAULT 0,
    latency_ms           BIGINT NOT NULL DEFAULT 0,
    edge_types           TEXT,
    error_context        TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW()"""

#: The reference application's table, as its PostgreSQL migration creates it.
CREATE_TABLE: Final = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id                   BIGSERIAL PRIMARY KEY,{_COLUMNS_DDL}
)
"""

#: The same columns partitioned by range of ``created_at`` (``partition_interval``):
#: a primary key of a partitioned table must hold the partition key, so it is
#: ``(id, created_at)``; ``id`` still comes from its sequence, unique.
#: Partitions are made by ``_partitions.make_partitions``.
CREATE_PARTITIONED_TABLE: Final = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id                   BIGSERIAL,{_COLUMNS_DDL},
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at)
"""

# The three indexed columns. An existing table that already has an index led by
# one of them (under any name) gets no second one: a duplicate would slow every
# insert of the application that shares the table.
_INDEXED_COLUMNS: Final = ("failure_type", "retrieval_strategy", "created_at")

# What each column's type may be for our rows to go in unchanged (pg_type names).
_INTEGERS: Final = frozenset({"int8", "numeric"})
_TEXTS: Final = frozenset({"text", "varchar"})
_FLOATS: Final = frozenset({"float4", "float8", "numeric"})
_EXPECTED: Final[dict[str, tuple[frozenset[str], bool]]] = {
    # column: (accepted types, whether it must accept NULL)
    "conversation_id": (_INTEGERS, True),
    "turn_index": (_INTEGERS, False),
    "failure_type": (_TEXTS, False),
    "retrieval_strategy": (_TEXTS, False),
    "query_text": (_TEXTS, False),
    "query_len": (_INTEGERS, False),
    "top_score": (_FLOATS, True),
    "confidence_threshold": (_FLOATS, True),
    "result_count": (_INTEGERS, False),
    "latency_ms": (_INTEGERS, False),
    "edge_types": (_TEXTS | {"json", "jsonb"}, True),
    "error_context": (_TEXTS, True),
    # A timestamp without time zone would silently drop the UTC offset we send.
    "created_at": (frozenset({"timestamptz"}), False),
}

#: Each column's type as CREATE_TABLE makes it (pg_type names).
REFERENCE_TYPES: Final = {
    "conversation_id": "int8",
    "turn_index": "int8",
    "failure_type": "text",
    "retrieval_strategy": "text",
    "query_text": "text",
    "query_len": "int8",
    "top_score": "float4",
    "confidence_threshold": "float4",
    "result_count": "int8",
    "latency_ms": "int8",
    "edge_types": "text",
    "error_context": "text",
    "created_at": "timestamptz",
}
_TYPE_PAIRS: Final = ", ".join(
    f"('{name}'::name, '{kind}'::regtype::oid)" for name, kind in REFERENCE_TYPES.items()
)
#: An SQL expression: whether the table's columns have exactly the types
#: CREATE_TABLE gives them (the table visible through search_path, as COPY
#: finds it). Binary COPY carries no types (the server reads each field as its
#: column's type now), so it is only sent where this is true, in a transaction
#: that holds the table locked against ALTER TABLE.
HAS_REFERENCE_TYPES: Final = (
    f"(SELECT count(*) = {len(REFERENCE_TYPES)} FROM pg_attribute"
    f" WHERE attrelid = to_regclass('{TABLE}') AND attnum > 0 AND NOT attisdropped"
    f" AND (attname, atttypid) IN ({_TYPE_PAIRS}))"
)

# The table visible through search_path, as the reference application's plain
# "memory_retrieval_failures" in its queries finds it.
_COLUMNS_QUERY: Final = """
SELECT a.attname, t.typname, a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass(%s::text) AND a.attnum > 0 AND NOT a.attisdropped
"""

_LEADING_INDEXED_QUERY: Final = """
SELECT a.attname
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = to_regclass(%s::text)
"""


def check_table(conn: psycopg.Connection[Any]) -> bool:
    """Check the existing table; return ``False`` when there is none.

    Raises :exc:`IncompatibleSchemaError` naming each problem unless the table
    accepts our rows: every column we write, of a type that takes our values
    unchanged, nullable where we write NULL; an ``id`` with a default; extra
    columns nullable or with a default.
    """
    found = {
        name: (typname, notnull, has_default)
        for name, typname, notnull, has_default in conn.execute(_COLUMNS_QUERY, (TABLE,))
    }
    if not found:
        return False
    problems: list[str] = []
    for name, (types, nullable) in _EXPECTED.items():
        if name not in found:
            problems.append(f"column {name!r} is missing")
            continue
        typname, notnull, _has_default = found[name]
        if typname not in types:
            problems.append(f"column {name!r} is {typname}, expected {' or '.join(sorted(types))}")
        if notnull and nullable:
            problems.append(f"column {name!r} is NOT NULL, but must accept NULL")
    if "id" not in found:
        problems.append("column 'id' is missing")
    elif not found["id"][2]:
        problems.append("column 'id' has no default (BIGSERIAL expected)")
    for name, (_typname, notnull, has_default) in found.items():
        if name not in _EXPECTED and name != "id" and notnull and not has_default:
            problems.append(f"extra column {name!r} is NOT NULL without a default")
    if problems:
        raise IncompatibleSchemaError(
            f"table {TABLE!r} has an incompatible shape: " + "; ".join(problems)
        )
    return True


def _check_privileges(conn: psycopg.Connection[Any]) -> None:
    """Raise :exc:`DatabaseSetupError` when our role may not insert into the table.

    Found at setup, this is one clear error; found at run time it would fail
    every batch. (DELETE, for the retention purge, is not required: a purge
    that is refused is only warned about.)
    """
    row = conn.execute(
        "SELECT has_table_privilege(to_regclass(%s::text), 'INSERT'),"
        " coalesce(has_sequence_privilege(pg_get_serial_sequence(%s, 'id'), 'USAGE'), true),"
        " current_user",
        (TABLE, TABLE),
    ).fetchone()
    assert row is not None
    insert, sequence, user = row
    if not (insert and sequence):
        what = "INSERT into the table" if not insert else "use the sequence of its 'id' column"
        raise DatabaseSetupError(f"role {user!r} may not {what} {TABLE!r}")


# Errors from creating the table while a process that does not take our
# advisory lock (the reference application) creates it too: retried, and the
# retry then finds the table.
_CREATE_RACES: Final = (
    psycopg.errors.UniqueViolation,
    psycopg.errors.DuplicateTable,
    psycopg.errors.DuplicateObject,
)
_CREATE_ATTEMPTS: Final = 5


def ensure_schema(conn: psycopg.Connection[Any], *, partitioned: bool = False) -> None:
    """Create the table and its indexes when missing, or check the existing table.

    ``partitioned``: a missing table is created partitioned by range of
    ``created_at`` (:data:`CREATE_PARTITIONED_TABLE`), with no partition yet.

    ``conn`` must be in autocommit mode. Runs in one transaction under an
    advisory lock (:data:`SCHEMA_LOCK`), so that processes of ours starting at
    once take turns; a creator that takes no lock is handled by retrying.
    Raises :exc:`IncompatibleSchemaError`, or psycopg's errors.
    """
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, SCHEMA_LOCK))
                if not check_table(conn):
                    conn.execute(CREATE_PARTITIONED_TABLE if partitioned else CREATE_TABLE)
                _check_privileges(conn)
                indexed = {name for (name,) in conn.execute(_LEADING_INDEXED_QUERY, (TABLE,))}
                for column in _INDEXED_COLUMNS:
                    if column not in indexed:
                        conn.execute(
                            f"CREATE INDEX IF NOT EXISTS idx_{TABLE}_{column} ON {TABLE} ({column})"
                        )
            return
        except _CREATE_RACES:
            if attempt == _CREATE_ATTEMPTS - 1:
                raise


def purge_sql(cutoff: str) -> str:
    """The chunked DELETE of the retention purge, with parameters (cutoff, cutoff, limit).

    ``cutoff`` is an SQL expression of one parameter giving the instant. The
    outer test of ``created_at`` lets PostgreSQL prune the partitions of a
    partitioned table (only the boundary one and a default one are searched
    for the ids); on a plain table it changes nothing.
    """
    return (
        f"DELETE FROM {TABLE} WHERE created_at < {cutoff} AND id IN"
        f" (SELECT id FROM {TABLE} WHERE created_at < {cutoff} LIMIT %s)"
    )
