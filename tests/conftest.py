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


@pytest.fixture
def served_build(build, settings, monkeypatch):
    """:func:`build`, as this process's Django site sees it: its outputs and generators."""
    import sys

    monkeypatch.syspath_prepend(str(build.gens.parent))
    for module in [m for m in sys.modules if m == "gens" or m.startswith("gens.")]:
        monkeypatch.delitem(sys.modules, module)  # another test's copies
    settings.CHARTBUILD_OUTPUT_DIR = str(build.out)
    settings.CHARTBUILD_STATE_DIR = str(build.state)
    settings.CHARTBUILD_GENERATORS = ["gens.users", "gens.shop"]
    return build


@pytest.fixture(scope="session", autouse=True)
def _no_session_outlives_the_tests(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end the sessions a killed process left on it."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


#: Generators whose charts read every column of the users' and the shop's tables.
WHOLE_TABLES = ["generators.shop", "tests.generators.good"]


@pytest.fixture
def whole_tables(settings):
    """Triggers for charts that read every column of auth_user (the demo's say which, so an
    ``UPDATE`` of ``first_name`` would record nothing): for tests of any write."""
    from chartbuild.capture import triggers as capture

    sync = capture.sync  # some tests replace it
    original = settings.CHARTBUILD_GENERATORS
    settings.CHARTBUILD_GENERATORS = WHOLE_TABLES
    sync()
    yield
    settings.CHARTBUILD_GENERATORS = original
    sync()
