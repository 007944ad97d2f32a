"""trio-failurelog: record failed memory/document recalls of trio programs in SQLite or PostgreSQL.

``log()`` is synchronous and cheap, never blocks and never raises at run time;
one writer task batches records into the database (an SQLite file, or a
PostgreSQL server with the ``postgres`` extra) on a worker thread. The
documentation (``docs/`` in the source) gives the guarantees and the on-disk format.
"""

from ._errors import DatabaseSetupError, IncompatibleSchemaError
from ._lifetime import open_failure_logger
from ._logger import RetrievalFailureLogger
from ._otel import Instrumentation, instrument  # imports opentelemetry only when called
from ._reader import AsyncFailureReader, FailureReader, open_failure_reader
from ._record import (
    ERROR_CONTEXT_MAX_CHARS,
    QUERY_TEXT_MAX_CHARS,
    FailureTypeName,
    RetrievalFailureRecord,
    RetrievalFailureType,
)
from ._redaction import REDACTION_FAILED, Redactor, mask_emails_and_digits
from ._statistics import LoggerStatistics
from ._summary import (
    FailureSummary,
    LatencyStats,
    RepeatedQuery,
    ThresholdStats,
    TimeBucket,
    TypeStrategyCount,
    WhatIf,
)
from ._table import SCHEMA_VERSION, TABLE
from ._timetext import TimeBound
from ._version import __version__ as __version__

__all__ = [
    "ERROR_CONTEXT_MAX_CHARS",
    "QUERY_TEXT_MAX_CHARS",
    "REDACTION_FAILED",
    "SCHEMA_VERSION",
    "TABLE",
    "AsyncFailureReader",
    "DatabaseSetupError",
    "FailureReader",
    "FailureSummary",
    "FailureTypeName",
    "IncompatibleSchemaError",
    "Instrumentation",
    "LatencyStats",
    "LoggerStatistics",
    "Redactor",
    "RepeatedQuery",
    "RetrievalFailureLogger",
    "RetrievalFailureRecord",
    "RetrievalFailureType",
    "ThresholdStats",
    "TimeBound",
    "TimeBucket",
    "TypeStrategyCount",
    "WhatIf",
    "instrument",
    "mask_emails_and_digits",
    "open_failure_logger",
    "open_failure_reader",
]
