"""Fixtures for the analyst views: the demo month, generated once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recon_core.demo import DemoFiles, build_demo_files


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoFiles]:
    """The demo month (invoice, conversations, rating), in a private cache folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
        yield build_demo_files()
