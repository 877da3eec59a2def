"""Which change records are settled; a transaction that holds them back is named."""

import logging
import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from chartbuild.export import horizon
from chartbuild.export.exporter import Exporter

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_transaction_holding_the_watermark_too_long_is_named_once(
    postgres, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(horizon, "HELD_TOO_LONG", 0.3)
    exporter = Exporter(["auth.user"], tmp_path)
    User.objects.create(username="ada")
    exporter.run()
    wrote, release = threading.Event(), threading.Event()

    def long_transaction():
        try:
            with transaction.atomic():
                User.objects.update(is_active=False)  # a column the user charts read
                wrote.set()
                release.wait(20)
        finally:
            connection.close()

    thread = threading.Thread(target=long_transaction, name="long")
    thread.start()
    try:
        assert wrote.wait(20)
        User.objects.create(username="bob")  # above the open transaction's record
        with caplog.at_level(logging.WARNING, logger="chartbuild.export.horizon"):
            exporter.run()
            assert "unsettled" not in caplog.text  # not yet held for long
            threading.Event().wait(0.5)
            for _ in range(3):
                exporter.run()
    finally:
        release.set()
        thread.join(20)
    held = [r.getMessage() for r in caplog.records if "unsettled" in r.getMessage()]
    assert len(held) == 1, held
    assert "pid " in held[0] and "chartbuild_change" in held[0]
    assert "Commit or roll it back" in held[0]


def test_sqlite_settles_what_it_has_seen():
    h = horizon.Horizon.for_connection("default", "chartbuild_change")
    if connection.vendor != "sqlite":
        pytest.skip("SQLite")
    assert h.busy() == set() and h.mark() == []


def test_a_table_that_cannot_be_found_settles_nothing(postgres):
    h = horizon.Horizon.for_connection("default", "no_such_table")
    assert h.busy() is None
