"""``python -m trio_failurelog``: the ``trio-failurelog`` command line."""

from ._cli import main

raise SystemExit(main())
