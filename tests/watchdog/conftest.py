"""Fixtures of the watchdog's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from testsupport.laptop import idle_laptop
from testsupport.watchdog import SECRET_TEXT


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The real site processes of a healthy laptop (hfo-site health and agent behind the drill's
    Funnel stand-in), one per test module: (health URL, CA bundle), keyed with SECRET_TEXT."""
    with idle_laptop(tmp_path_factory.mktemp("laptop"), SECRET_TEXT) as found:
        yield found
