"""The benchmark harness of trio-failurelog: the figures behind docs/performance.md.

``python -m benchmarks [--smoke] [--out bench-results.json]`` (or ``nox -s bench``)
runs every figure, prints one Markdown table and writes every figure, the
parameters and the machine's Python and SQLite versions as JSON.

One module per measured thing:

* :mod:`benchmarks.hot_path` -- figure 1, the cost of ``log()`` against a bare
  ``send_nowait`` on a trio memory channel, and of building a record;
* :mod:`benchmarks.throughput` -- figures 2 and 3, sustained throughput to a
  database file against raw sqlite3 and three peers, and event-loop lateness
  while it runs;
* :mod:`benchmarks.memory` -- figure 4, bounded memory and exact accounting under
  overload (run in a fresh subprocess);
* :mod:`benchmarks.latency` -- figure 5, log-to-commit latency and drop rate for a
  grid of batch sizes and flush intervals at steady offered loads.

The machine is shared and noisy: every comparison is a ratio of medians measured
in the same run; absolute figures are for information only. Benchmarks are not
tests: ``tests/test_benchmarks_smoke.py`` only checks that a tiny run completes
and reports everything.
"""
