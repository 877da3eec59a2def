import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from mqueue.models import MEvent

from chartbuild import exporter as exporter_module
from chartbuild.exporter import Exporter

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = ["auth.user", "shop.order", "shop.product"]


@pytest.fixture
def exporter(tmp_path):
    return Exporter(MODELS, tmp_path)


def stamps(exp):
    return {m: exp.stamp_path(m).read_text() for m in MODELS}


def test_first_run_writes_a_stamp_for_every_watched_model(exporter):
    User.objects.create(username="ada")
    result = exporter.run()
    assert result.changed == ("auth.user",)
    assert set(result.stamps) == set(MODELS)
    assert all(path.exists() for path in result.stamps.values())


def test_no_new_events_changes_no_stamp(exporter):
    User.objects.create(username="ada")
    exporter.run()
    before = {m: exporter.stamp_path(m).stat().st_mtime_ns for m in MODELS}
    content = stamps(exporter)
    for _ in range(3):
        assert exporter.run().changed == ()
    assert stamps(exporter) == content
    assert {m: exporter.stamp_path(m).stat().st_mtime_ns for m in MODELS} == before


def test_a_save_changes_only_its_models_stamp(exporter):
    exporter.run()
    exporter.run()
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


def test_one_aggregate_query_however_many_events(exporter):
    exporter.run()
    User.objects.bulk_create([User(username=f"u{i}") for i in range(300)])
    for user in User.objects.all()[:200]:
        user.save()
    with CaptureQueriesContext(connection) as queries:
        assert exporter.run().changed == ("auth.user",)
    on_events = [q["sql"] for q in queries if "mqueue_mevent" in q["sql"]]
    grouped = [sql for sql in on_events if "GROUP BY" in sql]
    assert len(grouped) == 1
    assert len(queries) <= 4


def test_a_crash_before_the_cursor_is_saved_repeats_the_change(exporter, monkeypatch):
    exporter.run()
    stamp_before = exporter.stamp_path("auth.user").read_text()
    User.objects.create(username="ada")
    real = exporter_module.write_if_changed

    def crash_on_cursor(path, data):
        if path == exporter.cursor_path:
            raise OSError("disk full")
        return real(path, data)

    monkeypatch.setattr(exporter_module, "write_if_changed", crash_on_cursor)
    with pytest.raises(OSError):
        exporter.run()
    monkeypatch.setattr(exporter_module, "write_if_changed", real)
    # The events are reported again: an extra rebuild, never a missed one.
    assert exporter.run().changed == ("auth.user",)
    assert exporter.stamp_path("auth.user").read_text() != stamp_before
    assert exporter.run().changed == ()


def test_a_replaced_events_table_moves_every_stamp(exporter):
    User.objects.create(username="ada")
    exporter.run()
    content = stamps(exporter)
    MEvent.objects.all().delete()
    User.objects.create(username="bob")
    exporter.run()
    after = stamps(exporter)
    assert all(after[m] != content[m] for m in MODELS)


def test_the_watermark_moves_once_events_are_settled(exporter):
    for i in range(3):
        User.objects.create(username=f"u{i}")
        exporter.run()
    exporter.run()
    highest = MEvent.objects.order_by("-id").values_list("id", flat=True)[0]
    cursor = exporter_module.Cursor.load(exporter.cursor_path)
    assert cursor.watermark == highest
    assert cursor.window == {}


def test_an_event_committed_after_a_higher_one_still_changes_the_stamp(postgres, exporter):
    """Ids are allocated at insert: a transaction can commit an id below one already exported."""
    exporter.run()
    inserted, release = threading.Event(), threading.Event()
    slow_pk = []

    def slow_transaction():
        try:
            with transaction.atomic():
                slow_pk.append(User.objects.create(username="slow").pk)
                inserted.set()
                assert release.wait(20)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    assert inserted.wait(20)
    fast = User.objects.create(username="fast")  # commits first, with a higher event id
    assert exporter.run().changed == ("auth.user",)
    for _ in range(3):  # later exports must not move past the open transaction's event
        assert exporter.run().changed == ()
    stamp = exporter.stamp_path("auth.user").read_text()
    release.set()
    thread.join(20)

    slow_event = MEvent.objects.get(obj_pk=slow_pk[0], event_class="User created")
    fast_event = MEvent.objects.get(obj_pk=fast.pk, event_class="User created")
    assert slow_event.id < fast_event.id
    assert exporter.run().changed == ("auth.user",)
    assert exporter.stamp_path("auth.user").read_text() != stamp
    assert exporter.run().changed == ()


def test_a_lost_cursor_moves_every_stamp_past_what_it_showed(exporter):
    User.objects.create(username="ada")
    exporter.run()
    content = stamps(exporter)
    exporter.cursor_path.unlink()
    exporter.run()
    after = stamps(exporter)
    assert all(after[m] != content[m] for m in MODELS)
    assert exporter.run().changed == ()
