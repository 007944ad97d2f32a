"""Sphinx configuration: ``nox -s docs`` builds the HTML into docs/_build/html."""

from __future__ import annotations

import trio_failurelog

project = "trio-failurelog"
author = "trio-failurelog developers"
copyright = "trio-failurelog developers"
release = trio_failurelog.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings' Google-style "Args:" sections
    "myst_parser",  # pages in Markdown, like the README they came from
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
# Headings get anchors so that pages can link to a section: page.md#anchor.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# The public names live in private modules; documented (and referred to by
# type hints) as what users import: trio_failurelog.Name.
for _name in trio_failurelog.__all__:
    _obj = getattr(trio_failurelog, _name)
    if getattr(_obj, "__module__", "").startswith("trio_failurelog._"):
        _obj.__module__ = "trio_failurelog"

# The build runs offline (CI reaches package registries only), so there are no
# intersphinx inventories: references into the standard library and trio
# render as plain text. Every reference inside this project must resolve (-n).
nitpicky = True
nitpick_ignore = [
    # Private type aliases in signatures (shown by name, documented in prose).
    ("py:class", "Database"),
    ("py:class", "Synchronous"),
    ("py:class", "PartitionInterval"),
    ("py:class", "Redactor"),
    # Instrumentation is made by instrument(), never by hand: its constructor's
    # private registry type is not documented.
    ("py:class", "_Registry"),
    # OpenTelemetry's API, an optional extra (no inventory offline).
    ("py:class", "MeterProvider"),
]
nitpick_ignore_regex = [
    (r"py:.*", r"(builtins|collections|contextlib|datetime|enum|os|pathlib|sqlite3|typing)\..*"),
    (r"py:.*", r"(trio|trio\.lowlevel)\..*"),
    (r"py:.*", r"opentelemetry\..*"),
]

html_theme = "furo"
html_title = f"trio-failurelog {release}"
