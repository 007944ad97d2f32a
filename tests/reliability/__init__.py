"""Reliability tests: crash safety, contention, storage faults, hostile input,
cancellation, security. ``nox -s stress`` runs the long variants (``--stress``)."""
