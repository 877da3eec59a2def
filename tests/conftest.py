from pathlib import Path

import pytest
from django.conf import settings


def pytest_configure(config: pytest.Config) -> None:
    test_name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if test_name:
        Path(test_name).parent.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def postgres() -> None:
    """Skip unless the suite runs on PostgreSQL (scripts/test runs it there too)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


@pytest.fixture
def build(tmp_path):
    """A first real doit build of copies of the demo's generators, on a little data."""
    from tests.doit import Build, seed

    seed()
    built = Build(tmp_path)
    built.copy_demo_generators()
    first = built.run()
    assert first.returncode == 0, first.stderr
    return built
