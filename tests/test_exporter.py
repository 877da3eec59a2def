import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from mqueue.models import MEvent

from chartbuild.export import exporter as exporter_module
from chartbuild.export.exporter import ExportCursor, Exporter
from chartbuild.models import Change
from demo.shop.models import Order, Product

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("whole_tables")]

MODELS = ["auth.user", "shop.order", "shop.product"]


@pytest.fixture
def exporter(tmp_path):
    """An exporter that has run once: what the tests do next is all that is new."""
    exp = Exporter(MODELS, tmp_path)
    exp.run()
    return exp


def stamps(exp):
    return {m: exp.stamp_path(m).read_text() for m in MODELS}


def state(exp, source):
    return ExportCursor.load(exp.cursor_path).sources[source]


def settle(exp):
    """Export until the watermarks have passed everything there is."""
    for _ in range(3):
        exp.run()


def test_a_run_writes_a_stamp_for_every_watched_model(tmp_path):
    result = Exporter(MODELS, tmp_path).run()
    assert set(result.stamps) == set(MODELS)
    assert all(path.exists() for path in result.stamps.values())


def test_a_new_user_changes_the_user_stamp_only(exporter):
    User.objects.create(username="ada")
    assert exporter.run().changed == ("auth.user",)


def test_no_new_changes_change_no_stamp(exporter):
    User.objects.create(username="ada")
    exporter.run()
    before = {m: exporter.stamp_path(m).stat().st_mtime_ns for m in MODELS}
    content = stamps(exporter)
    for _ in range(3):
        assert exporter.run().changed == ()
    assert stamps(exporter) == content
    assert {m: exporter.stamp_path(m).stat().st_mtime_ns for m in MODELS} == before


def test_a_save_changes_only_its_models_stamp(exporter):
    content = stamps(exporter)
    user = User.objects.create(username="ada")
    user.first_name = "Ada"
    user.save()
    assert exporter.run().changed == ("auth.user",)
    after = stamps(exporter)
    assert after["auth.user"] != content["auth.user"]
    assert {m: after[m] for m in MODELS[1:]} == {m: content[m] for m in MODELS[1:]}


def test_delete_is_a_change(exporter):
    user = User.objects.create(username="ada")
    exporter.run()
    user.delete()
    assert exporter.run().changed == ("auth.user",)


def _update():  # of a column the demo's user charts read (see test_columns.py)
    User.objects.filter(username="ada").update(is_active=False)


def _bulk_create():
    User.objects.bulk_create([User(username=f"bulk{i}") for i in range(50)])


def _bulk_update():
    users = list(User.objects.all())
    for user in users:
        user.is_staff = True
    User.objects.bulk_update(users, ["is_staff"])


def _queryset_delete():
    User.objects.filter(username="ada").delete()


def _raw_sql():
    with connection.cursor() as cursor:
        cursor.execute("UPDATE auth_user SET is_staff = %s WHERE username = %s", [True, "ada"])


def _many_to_many():
    User.objects.get(username="ada").groups.add(Group.objects.create(name="staff"))


WRITES = {
    "update": _update,
    "bulk_create": _bulk_create,
    "bulk_update": _bulk_update,
    "queryset delete": _queryset_delete,
    "raw SQL": _raw_sql,
    "many-to-many": _many_to_many,
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_kind_of_write_changes_its_models_stamp(exporter, write):
    User.objects.create(username="ada")
    exporter.run()
    write()
    changed = exporter.run().changed
    # a group is no watched model here; adding a user to one changes what user charts see
    assert changed == ("auth.user",)
    assert exporter.run().changed == ()


def test_a_rolled_back_write_changes_nothing(exporter):
    User.objects.create(username="ada")
    exporter.run()
    with pytest.raises(RuntimeError), transaction.atomic():
        _update()
        _bulk_create()
        raise RuntimeError("roll back")
    assert exporter.run().changed == ()


def test_one_aggregate_query_per_source_however_many_changes(exporter):
    User.objects.bulk_create([User(username=f"u{i}") for i in range(300)])
    for user in User.objects.all()[:200]:
        user.save()
    with CaptureQueriesContext(connection) as queries:
        assert exporter.run().changed == ("auth.user",)
    grouped = [q["sql"] for q in queries if "GROUP BY" in q["sql"]]
    # mqueue's events and the change log, counted; then what wrote the changed ones, told
    # for `chartbuild why`: one grouped query per source and the samples
    assert len(grouped) == 4
    # the rest: anchors, the SQLite marker, registering, pruning: a handful, not per record
    assert len(queries) <= 20


def test_a_crash_before_the_cursor_is_saved_repeats_the_change(exporter, monkeypatch):
    stamp_before = exporter.stamp_path("auth.user").read_text()
    User.objects.create(username="ada")
    real = exporter_module.write_if_changed

    def crash_on_cursor(path, data, **options):
        if path == exporter.cursor_path:
            raise OSError("disk full")
        return real(path, data, **options)

    monkeypatch.setattr(exporter_module, "write_if_changed", crash_on_cursor)
    with pytest.raises(OSError):
        exporter.run()
    monkeypatch.setattr(exporter_module, "write_if_changed", real)
    # The change is reported again: an extra rebuild, never a missed one.
    assert exporter.run().changed == ("auth.user",)
    assert exporter.stamp_path("auth.user").read_text() != stamp_before
    assert exporter.run().changed == ()


def test_a_replaced_events_table_moves_every_stamp(exporter):
    User.objects.create(username="ada")
    exporter.run()
    content = stamps(exporter)
    MEvent.objects.all().delete()
    Change.objects.all().delete()
    User.objects.create(username="bob")
    exporter.run()
    after = stamps(exporter)
    assert all(after[m] != content[m] for m in MODELS)


def test_the_watermarks_move_once_changes_are_settled(exporter):
    for i in range(3):
        User.objects.create(username=f"u{i}")
        exporter.run()
    settle(exporter)
    highest = MEvent.objects.order_by("-id").values_list("id", flat=True)[0]
    assert state(exporter, "events").watermark == highest
    assert state(exporter, "events").window == {}
    assert state(exporter, "capture").window == {}


def test_a_lost_cursor_moves_every_stamp(exporter):
    User.objects.create(username="ada")
    exporter.run()
    content = stamps(exporter)
    exporter.cursor_path.unlink()
    exporter.run()
    after = stamps(exporter)
    assert all(after[m] != content[m] for m in MODELS)
    assert exporter.run().changed == ()


def test_lost_stamps_and_cursor_never_repeat_a_stamp_seen_before(tmp_path):
    """doit may have recorded any stamp content it saw: new ones must differ from all."""
    seen = set()
    for _ in range(3):
        exp = Exporter(MODELS, tmp_path)
        for _ in range(2):
            User.objects.create(username=f"u{User.objects.count()}")
            exp.run()
            seen.add(exp.stamp_path("auth.user").read_text())
        exp.cursor_path.unlink()
        for model in MODELS:
            exp.stamp_path(model).unlink()
    exp = Exporter(MODELS, tmp_path)
    exp.run()
    assert exp.stamp_path("auth.user").read_text() not in seen


def test_an_unreadable_cursor_is_a_warning_and_a_full_rebuild(exporter, caplog):
    content = stamps(exporter)
    exporter.cursor_path.write_text('{"version": 3, "epoch": ')
    exporter.run()
    assert "unreadable" in caplog.text and "every chart is rebuilt" in caplog.text
    after = stamps(exporter)
    assert all(after[m] != content[m] for m in MODELS)


def test_settled_changes_are_deleted_from_the_log(exporter):
    for i in range(5):
        User.objects.filter(pk__gt=0).update(first_name=f"n{i}")
        Product.objects.create(name=f"p{i}", category="books", price="1.00")
        exporter.run()
    settle(exporter)
    capture = state(exporter, "capture")
    assert Change.objects.filter(id__lte=capture.watermark).count() <= 1  # the anchor stays
    assert Change.objects.count() <= 2


def test_the_log_stays_small_after_a_million_changes(exporter):
    """Done-when 6: once exported, the log holds only what is not settled yet."""
    million = 1_000_000
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "INSERT INTO chartbuild_change (table_name)"
                " SELECT CASE n %% 2 WHEN 0 THEN 'auth_user' ELSE 'shop_order' END"
                " FROM generate_series(1, %s) AS s(n)",
                [million],
            )
        else:
            cursor.execute(
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < %s)"
                " INSERT INTO chartbuild_change (table_name)"
                " SELECT CASE n %% 2 WHEN 0 THEN 'auth_user' ELSE 'shop_order' END FROM c",
                [million],
            )
    assert exporter.run().changed == ("auth.user", "shop.order")
    settle(exporter)
    assert Change.objects.count() <= 2
    watermark = state(exporter, "capture").watermark
    assert watermark > million

    Product.objects.bulk_create(
        [Product(name=f"p{i}", category="books", price="1.00") for i in range(10)]
    )
    with CaptureQueriesContext(connection) as queries:
        assert exporter.run().changed == ("shop.product",)
    aggregate = next(
        q["sql"] for q in queries if "GROUP BY" in q["sql"] and "chartbuild" in q["sql"]
    )
    assert f"id > {watermark}" in aggregate  # the history is neither kept nor scanned


def test_old_events_are_pruned_when_asked(tmp_path):
    exp = Exporter(MODELS, tmp_path, keep_events=timedelta(days=7))
    for i in range(4):
        User.objects.create(username=f"u{i}")
    MEvent.objects.filter(obj_pk__in=User.objects.values("pk")[:3]).update(
        date_posted=timezone.now() - timedelta(days=8)
    )
    settle(exp)
    assert MEvent.objects.count() == 1  # the young one
    User.objects.create(username="later")
    assert exp.run().changed == ("auth.user",)  # pruning never moves a stamp by itself


def test_events_are_kept_by_default(exporter):
    for i in range(3):
        User.objects.create(username=f"u{i}")
    settle(exporter)
    assert MEvent.objects.count() == 3


def test_sqlite_records_one_change_per_table_and_kind_until_it_is_exported(exporter):
    if connection.vendor != "sqlite":
        pytest.skip("row-level triggers with one record per table between exports: SQLite")
    User.objects.bulk_create([User(username=f"u{i}") for i in range(100)])
    User.objects.update(is_active=False)  # the newest record is now auth_user's UPDATE
    before = Change.objects.count()
    User.objects.update(is_staff=True)  # its rows are added to that record
    assert Change.objects.count() == before
    newest = Change.objects.order_by("-id").first()
    users = User.objects.count()
    assert (newest.table_name, newest.operation, newest.rows) == ("auth_user", "UPDATE", 2 * users)
    assert exporter.run().changed == ("auth.user",)
    # After the export read the log, the next write records again.
    User.objects.filter(username="u1").update(first_name="one")
    assert exporter.run().changed == ("auth.user",)
    assert exporter.run().changed == ()


def _slow_write(write, inserted, release):
    """Run ``write`` in a transaction that stays open until ``release`` is set."""

    def run():
        try:
            with transaction.atomic():
                write()
                inserted.set()
                assert release.wait(20)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert inserted.wait(20)
    return thread


def test_an_event_committed_after_a_higher_one_still_changes_the_stamp(postgres, exporter):
    """Ids are allocated at insert: a transaction can commit an id below one already exported."""
    inserted, release = threading.Event(), threading.Event()
    thread = _slow_write(lambda: User.objects.create(username="slow"), inserted, release)
    fast = User.objects.create(username="fast")  # commits first, with a higher event id
    assert exporter.run().changed == ("auth.user",)
    for _ in range(3):  # later exports must not move past the open transaction's event
        assert exporter.run().changed == ()
    stamp = exporter.stamp_path("auth.user").read_text()
    release.set()
    thread.join(20)

    slow_event = MEvent.objects.get(name__contains="slow", event_class="User created")
    fast_event = MEvent.objects.get(obj_pk=fast.pk, event_class="User created")
    assert slow_event.id < fast_event.id
    assert exporter.run().changed == ("auth.user",)
    assert exporter.stamp_path("auth.user").read_text() != stamp
    assert exporter.run().changed == ()


def test_a_change_record_committed_after_a_higher_one_still_changes_the_stamp(postgres, exporter):
    """The same for the capture log: update() leaves no mqueue event, only a record."""
    User.objects.create(username="slow")
    User.objects.create(username="fast")
    exporter.run()
    inserted, release = threading.Event(), threading.Event()
    thread = _slow_write(
        lambda: User.objects.filter(username="slow").update(first_name="S"), inserted, release
    )
    User.objects.filter(username="fast").update(first_name="F")
    fast = Change.objects.filter(table_name="auth_user").latest("id").id
    visible = set(Change.objects.values_list("id", flat=True))
    assert exporter.run().changed == ("auth.user",)
    for _ in range(3):
        assert exporter.run().changed == ()
    release.set()
    thread.join(20)
    (slow,) = set(Change.objects.filter(id__lt=fast).values_list("id", flat=True)) - visible
    assert slow < fast  # committed after a higher record was exported
    assert exporter.run().changed == ("auth.user",)
    assert exporter.run().changed == ()


def test_an_order_change_leaves_the_user_stamp_alone(exporter):
    product = Product.objects.create(name="Dune", category="books", price="9.50")
    exporter.run()
    Order.objects.bulk_create(
        [Order(product=product, status="paid", quantity=1, amount="9.50") for _ in range(3)]
    )
    assert exporter.run().changed == ("shop.order",)


def test_another_state_directory_holds_pruning_back_until_it_has_settled(tmp_path):
    """Two builders on one database: one never deletes what the other has not counted."""
    slow = Exporter(MODELS, tmp_path / "slow")
    fast = Exporter(MODELS, tmp_path / "fast")
    slow.run()
    fast.run()
    User.objects.filter(pk__gt=0).update(first_name="seen by fast first")
    User.objects.create(username="ada")
    settle(fast)
    assert slow.run().changed == ("auth.user",)  # its records were still there
    settle(slow)
    settle(fast)
    assert Change.objects.count() <= 2  # now both have settled: pruned


def test_a_forgotten_state_directory_stops_holding_pruning_back(exporter):
    from chartbuild.export.exporter import CONSUMER_TTL
    from chartbuild.models import Consumer

    Consumer.objects.create(name="gone:/old/checkout", seen=timezone.now() - CONSUMER_TTL * 2)
    for i in range(3):
        User.objects.create(username=f"u{i}")
        exporter.run()
    settle(exporter)
    assert not Consumer.objects.filter(name="gone:/old/checkout").exists()
    assert Change.objects.count() <= 2


def test_the_sqlite_export_refuses_to_run_inside_a_transaction(exporter):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite marker")
    with pytest.raises(RuntimeError, match="outside a transaction"), transaction.atomic():
        exporter.run()


def test_what_an_export_read_is_recorded_once_its_build_has_published_it(exporter):
    from chartbuild.models import Consumer

    before = Consumer.objects.get()
    User.objects.create(username="new")
    result = exporter.run()
    unpublished = Consumer.objects.get()
    assert (unpublished.events_published, unpublished.capture_published) == (
        before.events_published,
        before.capture_published,
    )
    consumers = exporter_module.Consumers(
        "default", exporter_module.consumer_name(exporter.state_dir)
    )
    consumers.note_published(result.read)
    after = Consumer.objects.get()
    assert after.events_published > before.events_published
    assert after.capture_published > before.capture_published
    assert after.seen > before.seen
    consumers.note_published(result.read)  # nothing new: nothing written
    assert Consumer.objects.get().seen == after.seen
