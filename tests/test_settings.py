"""The logger's defaults are named once, and every public signature agrees with them."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import trio_failurelog._settings as settings_module
from trio_failurelog import RetrievalFailureLogger, open_failure_logger
from trio_failurelog._settings import LoggerSettings


def _defaults(fn: Callable[..., Any]) -> dict[str, object]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(fn).parameters.items()
        if name != "database"
    }


def _settings_defaults() -> dict[str, object]:
    return {field.name: field.default for field in dataclasses.fields(LoggerSettings)}


@pytest.mark.parametrize("fn", [RetrievalFailureLogger, open_failure_logger])
def test_public_signatures_agree_with_the_settings(fn: Callable[..., Any]) -> None:
    # Same names, same order, same defaults: a setting added to one and not the
    # others, or a default typed out again and changed, fails here.
    assert list(_defaults(fn).items()) == list(_settings_defaults().items())


def test_each_default_is_a_named_constant() -> None:
    for name, default in _settings_defaults().items():
        if name == "redact":
            assert default is None
            continue
        assert getattr(settings_module, f"DEFAULT_{name.upper()}") == default


def test_the_signatures_show_the_values() -> None:
    shown = str(inspect.signature(open_failure_logger))
    assert "capacity: 'int' = 8192" in shown
    assert "drain_timeout: 'float' = 5.0" in shown
