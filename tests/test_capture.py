"""Change capture in the database: the triggers, their installation, and ORM capture."""

import logging
import os
import threading
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction

from chartbuild.capture import triggers as capture
from chartbuild.checks import check_capture
from chartbuild.declare import catalog
from chartbuild.models import Change
from demo.shop.models import Product
from tests.conftest import WHOLE_TABLES
from tests.doit import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("whole_tables")]

WATCHED = {
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "shop_order",
    "shop_product",
}


def records(table: str) -> int:
    return Change.objects.filter(table_name=table).count()


@pytest.fixture(autouse=True)
def _no_recorder_outlives_its_test():
    """A connection opened while a test set ORM capture got a recorder: it goes after."""
    yield
    for alias in connections:
        wrappers = connections[alias].execute_wrappers
        wrappers[:] = [w for w in wrappers if not isinstance(w, capture.Recorder)]


@pytest.fixture
def reinstalled():
    """Whatever a test does to the triggers, the next one starts with them installed.

    List it before ``settings``: it reinstalls once the test's settings are undone.
    """
    yield
    capture.sync()


def test_migrate_installs_a_trigger_on_every_table_a_chart_reads():
    status = capture.for_database().status(capture.watched_tables(catalog.load()))
    assert status == dict.fromkeys(WATCHED, capture.INSTALLED)


def test_a_write_that_changes_no_row_records_nothing():
    User.objects.create(username="ada")
    before = Change.objects.count()
    User.objects.filter(username="nobody").update(first_name="x")
    User.objects.filter(username="nobody").delete()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET price = price WHERE id < 0")
    assert Change.objects.count() == before


def test_one_statement_over_many_rows_records_once():
    User.objects.bulk_create([User(username=f"u{i}") for i in range(500)])
    Change.objects.create(table_name="")  # as an export leaves the log after reading it
    before = records("auth_user")
    User.objects.update(first_name="all")
    assert records("auth_user") == before + 1


def test_postgres_records_each_statement_that_writes(postgres):
    before = records("auth_user")
    with transaction.atomic():
        User.objects.create(username="a")
        User.objects.filter(username="nobody").update(first_name="x")  # writes nothing
        User.objects.filter(username="a").update(first_name="A")
    assert records("auth_user") == before + 2


def test_postgres_records_a_truncate(postgres):
    Product.objects.create(name="Dune", category="books", price="9.50")
    before = records("shop_product")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE shop_product CASCADE")
    assert records("shop_product") == before + 1


def test_a_rolled_back_write_records_nothing():
    before = Change.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.create(username="ghost")
        User.objects.update(is_staff=True)
        raise RuntimeError("roll back")
    assert Change.objects.count() == before


def test_a_write_from_another_role_and_search_path_still_records(postgres):
    """The trigger function runs as its owner, with its own search path."""
    role = f"chartbuild_writer_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role}")
        cursor.execute(f"GRANT UPDATE, SELECT ON auth_user TO {role}")
    User.objects.create(username="ada")
    before = records("auth_user")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {role}")
            cursor.execute("SET LOCAL search_path TO pg_catalog")
            cursor.execute("UPDATE public.auth_user SET first_name = 'Ada'")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE ALL ON auth_user FROM {role}")
            cursor.execute(f"DROP ROLE {role}")
    assert records("auth_user") == before + 1


def test_concurrent_writers_of_one_table_do_not_wait_for_each_other(postgres):
    """Done-when 2: an append-only log, no counter row held until commit."""
    User.objects.create(username="a")
    User.objects.create(username="b")
    first_wrote, second_done = threading.Event(), threading.Event()
    errors = []

    def first():
        try:
            with transaction.atomic():
                User.objects.filter(username="a").update(first_name="A")
                first_wrote.set()
                assert second_done.wait(20)  # open until the other one has committed
        except Exception as exc:
            errors.append(exc)
        finally:
            connections["default"].close()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_wrote.wait(20)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '2s'")  # a wait would fail, not hang
        User.objects.filter(username="b").update(first_name="B")
    second_done.set()
    thread.join(20)
    assert errors == []
    assert list(User.objects.order_by("username").values_list("first_name", flat=True)) == [
        "A",
        "B",
    ]


def test_postgres_notifies_at_commit_and_not_on_rollback(postgres):
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as listener:
        listener.execute("LISTEN chartbuild")
        with pytest.raises(RuntimeError), transaction.atomic():
            User.objects.create(username="ghost")
            raise RuntimeError("roll back")
        assert list(listener.notifies(timeout=0.5)) == []
        with transaction.atomic():
            User.objects.create(username="ada")
            assert list(listener.notifies(timeout=0.3)) == []  # not before the commit
        got = list(listener.notifies(timeout=2, stop_after=1))
    assert [n.payload for n in got] == ["auth_user"]


def test_sync_removes_the_triggers_of_tables_no_chart_reads(reinstalled, settings):
    settings.CHARTBUILD_GENERATORS = ["tests.generators.untracked"]  # reads auth.Group only
    report = capture.sync()
    assert set(report.removed) == WATCHED - {"auth_user_groups"}
    # a group's users and permissions, and mqueue's events of a group (MEvent.groups)
    assert set(report.added) == {"auth_group", "auth_group_permissions", "mqueue_mevent_groups"}
    before = records("shop_product")
    Product.objects.create(name="Dune", category="books", price="9.50")
    assert records("shop_product") == before


def test_sync_removes_nothing_while_a_generator_is_broken(reinstalled, settings):
    settings.CHARTBUILD_GENERATORS = ["tests.generators.good", "tests.generators.broken"]
    report = capture.sync()
    assert report.removed == []
    status = capture.for_database().status(WATCHED)
    assert all(state == capture.INSTALLED for state in status.values())


def test_an_outdated_trigger_is_reported_and_replaced(reinstalled):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE shop_order DISABLE TRIGGER chartbuild_{capture.VERSION}")
        else:
            cursor.execute(f'DROP TRIGGER "chartbuild_{capture.VERSION}_shop_order_update"')
            cursor.execute(
                f'CREATE TRIGGER "chartbuild_{capture.VERSION}_shop_order_update"'
                " AFTER UPDATE ON shop_order BEGIN SELECT 1; END"
            )
    backend = capture.for_database()
    assert backend.status(WATCHED)["shop_order"] == capture.OUTDATED
    errors = [m for m in check_capture(databases=["default"]) if m.id == "chartbuild.E010"]
    assert [m.obj for m in errors] == ["shop_order"]
    assert "outdated change-capture trigger" in errors[0].msg
    assert "manage.py migrate" in errors[0].hint
    assert capture.sync().updated == ["shop_order"]
    assert backend.status(WATCHED)["shop_order"] == capture.INSTALLED


def test_a_missing_trigger_is_an_error_that_migrate_mends(reinstalled):
    capture.for_database().remove()
    errors = [m for m in check_capture(databases=["default"]) if m.id == "chartbuild.E010"]
    assert sorted(m.obj for m in errors) == sorted(WATCHED)
    assert "has no change-capture trigger" in errors[0].msg
    call_command("migrate", verbosity=0)
    assert [m for m in check_capture(databases=["default"]) if m.id == "chartbuild.E010"] == []


def test_the_capture_checks_are_database_checks_that_only_check_database_runs(reinstalled):
    from django.core.checks import Tags, run_checks
    from django.test.utils import CaptureQueriesContext

    capture.for_database().remove()
    with CaptureQueriesContext(connection) as queries:
        found = run_checks()  # as every command runs them, migrate included
    assert not [m for m in found if m.id == "chartbuild.E010"]
    assert not [q for q in queries.captured_queries if "trigger" in q["sql"].lower()]
    found = run_checks(tags=[Tags.database], databases=["default"])  # check --database
    assert {m.obj for m in found if m.id == "chartbuild.E010"} == set(WATCHED)
    call_command("migrate", verbosity=0)  # not stopped by the missing triggers: installs them
    assert not [m for m in check_capture(databases=["default"]) if m.id == "chartbuild.E010"]


def test_manage_py_migrate_is_not_stopped_by_the_triggers_it_installs(reinstalled):
    """``manage.py migrate`` runs the database checks first (``call_command`` skips them):
    E010 must not stop the command that mends it (a new chartbuild's trigger version)."""
    import subprocess
    import sys

    from tests.doit import REPO

    capture.for_database().remove()
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "CHARTBUILD_TEST_GENERATORS": ",".join(WHOLE_TABLES),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "chartbuild capture triggers: added on" in done.stdout
    assert not [m for m in check_capture(databases=["default"]) if m.id == "chartbuild.E010"]


def test_w006_a_model_stored_in_a_view_is_a_warning(reinstalled):
    """A table replaced by a view of the same name: writes behind it are not seen."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE shop_product RENAME TO shop_product_rows")
        cursor.execute("CREATE VIEW shop_product AS SELECT * FROM shop_product_rows")
    try:
        warnings = [m for m in check_capture(databases=["default"]) if m.id == "chartbuild.W006"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP VIEW shop_product")
            cursor.execute("ALTER TABLE shop_product_rows RENAME TO shop_product")
    assert [m.obj for m in warnings] == ["shop_product"]
    assert "shop.product is stored in 'shop_product', which is a view" in warnings[0].msg
    assert "Declare the models of the tables it selects from" in warnings[0].hint


def test_unmigrating_chartbuild_removes_its_triggers_first(reinstalled):
    call_command("migrate", "chartbuild", "zero", verbosity=0)
    try:
        User.objects.create(username="still saves")  # no trigger writes to a missing table
        assert capture.for_database().remove() == []
    finally:
        call_command("migrate", verbosity=0)
    assert capture.for_database().status(WATCHED)["auth_user"] == capture.INSTALLED


def test_the_capture_command_lists_every_watched_table():
    out = StringIO()
    call_command("chartbuild", "capture", stdout=out)
    lines = out.getvalue().splitlines()
    assert "captured by triggers" in lines[0]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == dict.fromkeys(WATCHED, "installed")


def test_the_capture_command_installs_and_removes(reinstalled):
    out = StringIO()
    call_command("chartbuild", "capture", "--remove", stdout=out)
    assert "removed the triggers of auth_user" in out.getvalue()
    out = StringIO()
    call_command("chartbuild", "capture", "--install", stdout=out)
    assert "added on auth_user" in out.getvalue()


@pytest.fixture
def orm_capture(reinstalled, settings):
    """ORM capture as on a database without triggers: the triggers go, the wrapper comes."""
    capture.for_database().remove()
    settings.CHARTBUILD_CAPTURE = "orm"
    capture.for_database().install_wrapper()
    yield
    settings.CHARTBUILD_CAPTURE = "auto"


WRITES = {
    "update": lambda: User.objects.update(first_name="x"),
    "bulk_create": lambda: User.objects.bulk_create([User(username="b1"), User(username="b2")]),
    "bulk_update": lambda: User.objects.bulk_update(
        [User(pk=u.pk, username=u.username, last_name="y") for u in User.objects.all()],
        ["last_name"],
    ),
    "queryset delete": lambda: User.objects.filter(username="ada").delete(),
    "raw SQL": lambda: connection.cursor().execute("UPDATE auth_user SET is_staff = true"),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_orm_capture_records_writes_through_django(orm_capture, write):
    User.objects.create(username="ada")
    before = records("auth_user")
    write()
    assert records("auth_user") > before


def test_orm_capture_drops_the_record_of_a_rolled_back_write(orm_capture):
    User.objects.create(username="ada")
    before = records("auth_user")
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.update(first_name="x")
        raise RuntimeError("roll back")
    assert records("auth_user") == before


def test_orm_capture_is_a_warning_that_other_programs_are_not_seen(orm_capture):
    (warning,) = [m for m in check_capture(databases=["default"]) if m.id != "chartbuild.W007"]
    assert warning.id == "chartbuild.W002"
    assert "not those of other programs" in warning.msg


def test_an_unknown_capture_mode_is_an_error(settings):
    from chartbuild.checks import check_configuration

    settings.CHARTBUILD_CAPTURE = "triggers"
    (error,) = [m for m in check_configuration() if m.id == "chartbuild.E011"]
    assert "'auto', 'orm'" in error.msg


def test_a_migration_of_an_app_charts_read_records_its_tables():
    """A data migration writes without any trigger seeing it (SQLite even rebuilds tables)."""
    from django.db.migrations.loader import MigrationLoader

    migration = MigrationLoader(connection).get_migration("shop", "0001_initial")
    before = {table: records(table) for table in WATCHED}
    capture.on_post_migrate(using="default", verbosity=0, plan=[(migration, False)])
    after = {table: records(table) for table in WATCHED}
    assert {t for t in WATCHED if after[t] > before[t]} == {"shop_order", "shop_product"}


def test_postgres_records_an_update_beside_a_delete_that_writes_nothing(postgres):
    """A data-modifying WITH fires one trigger pair per event: each counts on its own."""
    User.objects.create(username="ada")
    before = records("auth_user")
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH gone AS (DELETE FROM auth_user WHERE false)"
            " UPDATE auth_user SET first_name = 'Ada'"
        )
    assert records("auth_user") == before + 1


def test_orm_mode_removes_the_triggers_left_from_auto(reinstalled, settings):
    settings.CHARTBUILD_CAPTURE = "orm"
    assert set(capture.sync().removed) == WATCHED
    assert capture.remove(connection) == []  # whatever the setting: nothing left
    settings.CHARTBUILD_CAPTURE = "auto"


def test_triggers_and_functions_of_other_names_are_left_alone(reinstalled):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION chartbuild_audit() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RETURN NULL; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER chartbuild_audit AFTER INSERT ON shop_product"
                " FOR EACH STATEMENT EXECUTE FUNCTION chartbuild_audit()"
            )
            exists = (
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'chartbuild_audit'"
                " UNION ALL SELECT count(*) FROM pg_proc WHERE proname = 'chartbuild_audit'"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER chartbuild_audit AFTER INSERT ON shop_product BEGIN SELECT 1; END"
            )
            exists = "SELECT count(*) FROM sqlite_master WHERE name = 'chartbuild_audit'"
    try:
        capture.for_database().remove()
        capture.sync()
        with connection.cursor() as cursor:
            cursor.execute(exists)
            assert all(count == 1 for (count,) in cursor.fetchall())
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER chartbuild_audit ON shop_product")
                cursor.execute("DROP FUNCTION chartbuild_audit()")
            else:
                cursor.execute("DROP TRIGGER chartbuild_audit")


def test_without_notify_the_triggers_are_outdated_then_silent(postgres, reinstalled, settings):
    import psycopg

    settings.CHARTBUILD_NOTIFY = False
    assert capture.for_database().status(WATCHED)["auth_user"] == capture.OUTDATED
    assert set(capture.sync().updated) == WATCHED
    with psycopg.connect(database_url(), autocommit=True) as listener:
        listener.execute("LISTEN chartbuild")
        User.objects.create(username="quiet")
        assert list(listener.notifies(timeout=0.5)) == []
    assert records("auth_user") >= 1
    settings.CHARTBUILD_NOTIFY = True


def test_a_failed_orm_record_is_logged_and_never_breaks_the_write(orm_capture, caplog):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE chartbuild_change RENAME TO chartbuild_change_away")
    try:
        with caplog.at_level(logging.WARNING, logger="chartbuild.capture.triggers"):
            User.objects.create(username="still saved")
            User.objects.update(first_name="x")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE chartbuild_change_away RENAME TO chartbuild_change")
    assert User.objects.filter(username="still saved", first_name="x").exists()
    assert caplog.text.count("could not record a write to auth_user") == 1


def test_a_failed_installation_is_reported_and_migrate_goes_on(monkeypatch, caplog):
    def refused(*args, **kwargs):
        raise DatabaseError("must be owner of table auth_user")

    monkeypatch.setattr(capture, "sync", refused)
    with caplog.at_level(logging.ERROR, logger="chartbuild.capture.triggers"):
        capture.on_post_migrate(using="default", verbosity=0)
    assert "must be owner of table auth_user" in caplog.text
    assert "manage.py chartbuild capture --install" in caplog.text
