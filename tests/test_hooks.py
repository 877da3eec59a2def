import json
import logging

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction
from mqueue.models import MEvent

from chartbuild.live import wakeup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def state(settings, tmp_path):
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    settings.CHARTBUILD_OUTPUT_DIR = tmp_path / "charts"
    (tmp_path / "state").mkdir()
    return tmp_path / "state"


@pytest.fixture
def listener(state):
    """Stands where a running `doit auto` would: receives the hook's wake-ups."""
    listening = wakeup.Listener(state)
    yield listening
    listening.close()


def signals(listener) -> int:
    """How many wake-ups the hook sent since the last call."""
    return listener.pending()


def test_one_signal_per_transaction_however_many_saves(listener):
    with transaction.atomic():
        for i in range(20):
            User.objects.create(username=f"u{i}")
        assert signals(listener) == 0  # nothing before commit
    assert signals(listener) == 1


def test_each_autocommitted_save_signals_once(listener):
    User.objects.create(username="a")
    User.objects.create(username="b")
    assert signals(listener) == 2


def test_a_rolled_back_change_signals_nothing(listener):
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.create(username="ghost")
        raise RuntimeError("roll back")
    assert signals(listener) == 0
    User.objects.create(username="real")  # the next transaction still signals
    assert signals(listener) == 1


def test_a_rolled_back_savepoint_does_not_swallow_the_next_change(listener):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            User.objects.create(username="ghost")
            raise RuntimeError("roll back the savepoint")
        User.objects.create(username="kept")
    assert signals(listener) == 1


def test_events_of_models_no_chart_reads_are_ignored(listener):
    MEvent.objects.create(model=Group, name="a group changed")
    MEvent.objects.create(name="no model at all")
    assert signals(listener) == 0


def test_with_no_watcher_signalling_is_a_quiet_no_op(state, caplog):
    with caplog.at_level(logging.DEBUG, logger="chartbuild"):
        User.objects.create(username="alone")
    assert caplog.text == ""


def test_a_hook_that_cannot_signal_does_not_break_the_save(state, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setattr(wakeup, "address", lambda state_dir: str(blocker / "socket"))
    with caplog.at_level(logging.ERROR, logger="chartbuild.live.hooks"):
        user = User.objects.create(username="saved")
    assert User.objects.filter(pk=user.pk).exists()
    assert "could not request a rebuild" in caplog.text


def test_build_mode_builds_the_affected_generator_after_commit(settings, state):
    settings.CHARTBUILD_HOOK = "build"
    out = settings.CHARTBUILD_OUTPUT_DIR
    with transaction.atomic():
        User.objects.create(username="ada")
        assert not (out / "users").exists()
    total = json.loads((out / "users" / "total_users.json").read_text())
    assert total["value"] == 1
    assert (out / "users" / "index.html").exists()
    assert not (out / "shop").exists()


def test_build_mode_never_raises_into_the_save(settings, state, caplog):
    settings.CHARTBUILD_HOOK = "build"
    settings.CHARTBUILD_LOCK_TIMEOUT = 0
    from chartbuild.build import lock

    held = lock.acquire(state / "build.lock", timeout=1)
    try:
        with caplog.at_level(logging.ERROR, logger="chartbuild.live.hooks"):
            User.objects.create(username="blocked")
    finally:
        lock.release(held)
    assert User.objects.filter(username="blocked").exists()
    assert "build.lock" in caplog.text


def test_a_failed_export_is_reported_once_not_once_per_chart(settings, state, caplog):
    settings.CHARTBUILD_HOOK = "build"
    (state / "stamps").write_text("a file where the stamps' folder should be")
    with caplog.at_level(logging.ERROR, logger="chartbuild.live.hooks"):
        User.objects.create(username="unstamped")
    (logged,) = [r.getMessage() for r in caplog.records if r.name == "chartbuild.live.hooks"]
    lines = logged.splitlines()
    assert "FAILED: export" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("export: "), lines


def test_build_mode_never_lets_a_base_exception_into_the_save(settings, state, monkeypatch, caplog):
    settings.CHARTBUILD_HOOK = "build"
    from chartbuild.build import runner

    def leave(*args, **kwargs):
        raise SystemExit("a build that calls sys.exit")

    monkeypatch.setattr(runner, "build", leave)
    with caplog.at_level(logging.ERROR, logger="chartbuild.live.hooks"):
        user = User.objects.create(username="saved anyway")
    assert User.objects.filter(pk=user.pk).exists()
    assert "a build that calls sys.exit" in caplog.text


@pytest.mark.parametrize("mode", ["signal", "build"])
def test_ctrl_c_in_a_save_is_the_users_and_goes_through(settings, state, monkeypatch, mode):
    settings.CHARTBUILD_HOOK = mode
    from chartbuild.live import hooks

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hooks, "_after_commit" if mode == "signal" else "_act", interrupted)
    with pytest.raises(KeyboardInterrupt):
        User.objects.create(username="stopped")
