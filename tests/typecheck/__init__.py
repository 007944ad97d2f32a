"""Files that mypy --strict checks and pytest never runs: what the public types promise."""
