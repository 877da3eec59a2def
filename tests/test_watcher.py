"""The watcher's core, without doit: a stand-in build function and real triggers."""

import io
import threading
import time

from chartbuild.build.runner import BuildResult
from chartbuild.live import wakeup
from chartbuild.live.watcher import StopWatching, Watcher


class Builds:
    def __init__(self) -> None:
        self.count = 0
        self.done = threading.Event()

    def __call__(self) -> BuildResult:
        self.count += 1
        self.done.set()
        return BuildResult(code=0, changed=("auth.user",), built=("users.total",), seconds=0.01)


def start(tmp_path, builds, **options):
    out = io.StringIO()
    source = tmp_path / "gen.py"
    source.write_text("# generator\n")
    changed: list = []
    watcher = Watcher(
        builds,
        sources=lambda: [source],
        wakers={"signal": wakeup.Listener(tmp_path)},
        poll_interval=options.pop("poll_interval", 60),
        out=out,
        on_source_change=changed.append,
        **options,
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    assert builds.done.wait(5)  # the first build
    builds.done.clear()
    return watcher, thread, out, source, changed


def test_a_burst_of_wake_ups_is_one_build(tmp_path):
    builds = Builds()
    watcher, thread, out, *_ = start(tmp_path, builds, quiet=0.2)
    try:
        for _ in range(500):
            wakeup.send(tmp_path)
        assert builds.done.wait(5)
        time.sleep(0.5)
        assert builds.count == 2
        assert "signal: auth.user -> rebuilt users.total" in out.getvalue()
    finally:
        watcher.stop()
        thread.join(5)


def test_polling_builds_without_any_trigger(tmp_path):
    builds = Builds()
    watcher, thread, out, *_ = start(tmp_path, builds, poll_interval=0.2)
    try:
        assert builds.done.wait(5)
        assert "poll: auth.user" in out.getvalue()
    finally:
        watcher.stop()
        thread.join(5)


def test_a_changed_source_is_reported_and_reloaded(tmp_path):
    builds = Builds()
    watcher, thread, out, source, changed = start(tmp_path, builds)
    try:
        source.write_text("# generator, edited\n")
        assert builds.done.wait(5)
        assert changed == [{source}]
        assert "gen.py changed" in out.getvalue()
    finally:
        watcher.stop()
        thread.join(5)


def test_a_failing_chart_is_reported_once_and_rerun_only_for_new_events(tmp_path):
    calls = {"build": 0, "export": 0}
    news = threading.Event()

    def failing() -> BuildResult:
        calls["build"] += 1
        return BuildResult(code=1, failures={"users.total": "ZeroDivisionError"}, seconds=0.01)

    def export() -> BuildResult:
        calls["export"] += 1
        changed = ("auth.user",) if news.is_set() else ()
        news.clear()
        return BuildResult(code=0, changed=changed, built=("export",))

    out = io.StringIO()
    watcher = Watcher(
        failing,
        sources=list,
        wakers={},
        poll_interval=0.05,
        out=out,
        export=export,
        retry_failed=60,
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    time.sleep(0.5)
    assert calls["build"] == 1 and calls["export"] > 3  # polls only export
    news.set()
    time.sleep(0.3)
    watcher.stop()
    thread.join(5)
    assert calls["build"] == 2  # new events: the charts ran again
    assert out.getvalue().count("ZeroDivisionError") == 1  # the same failure, said once


def test_reading_a_source_starts_no_build(tmp_path):
    builds = Builds()
    watcher, thread, _, source, _ = start(tmp_path, builds)
    try:
        for _ in range(3):
            source.read_text()  # every build reads its sources to compare them
        assert not builds.done.wait(1)
        assert builds.count == 1
    finally:
        watcher.stop()
        thread.join(5)


def test_a_build_that_cannot_run_is_reported_once_then_its_recovery(tmp_path):
    down = threading.Event()
    down.set()
    builds = {"n": 0}

    def build() -> BuildResult:
        builds["n"] += 1
        if down.is_set():
            return BuildResult(code=1, failures={"export": "cannot read changes: server closed"})
        return BuildResult(code=0, changed=("auth.user",), built=("users.total",))

    out = io.StringIO()
    watcher = Watcher(build, sources=list, wakers={}, poll_interval=0.05, out=out)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        time.sleep(0.5)
        assert builds["n"] > 3  # it keeps trying at every poll
        down.clear()
        time.sleep(0.3)
    finally:
        watcher.stop()
        thread.join(5)
    text = out.getvalue()
    assert text.count("server closed") == 1
    assert "builds again: auth.user -> rebuilt users.total" in text


def test_a_build_that_says_stop_ends_the_watch_with_its_reason():
    calls = []

    def build() -> BuildResult:
        calls.append(1)
        if len(calls) == 2:
            raise StopWatching("this builder lost the lead: builder pid 7 on b builds now")
        return BuildResult(code=0)

    out = io.StringIO()
    watcher = Watcher(build, sources=list, wakers={}, poll_interval=0.05, out=out)
    assert watcher.run() == 0  # returns by itself, on the second build
    assert len(calls) == 2
    assert out.getvalue().splitlines()[-1] == (
        "this builder lost the lead: builder pid 7 on b builds now"
    )


def test_a_commit_builds_at_once_while_an_edit_waits_for_the_editor(tmp_path):
    builds = Builds()
    watcher, thread, _, source, _ = start(tmp_path, builds, quiet=0.01, burst_quiet=1.0)
    try:
        woken = time.monotonic()
        wakeup.send(tmp_path)
        assert builds.done.wait(5)
        assert time.monotonic() - woken < 0.9  # not the sources' quiet
        builds.done.clear()
        edited = time.monotonic()
        source.write_text("# generator, edited\n")
        assert builds.done.wait(5)
        assert time.monotonic() - edited >= 1.0  # an editor's writes end first
    finally:
        watcher.stop()
        thread.join(5)


def test_commits_that_keep_coming_are_a_burst_built_after_a_longer_quiet(tmp_path):
    class WokenWhileBuilding(Builds):
        def __call__(self) -> BuildResult:
            if self.count == 1:  # the second build: commits come while it runs
                for _ in range(3):
                    time.sleep(0.01)
                    self.woken = time.monotonic()  # the quiet starts after the last one
                    wakeup.send(tmp_path)
                time.sleep(0.1)
            return super().__call__()

    builds = WokenWhileBuilding()
    watcher, thread, _, _, _ = start(tmp_path, builds, quiet=0.01, burst_quiet=1.0)
    try:
        wakeup.send(tmp_path)
        assert builds.done.wait(5)  # the second build, at once
        builds.done.clear()
        assert builds.done.wait(5)  # the third: after the burst's quiet
        assert time.monotonic() - builds.woken >= 1.0
        builds.done.clear()
        woken = time.monotonic()
        wakeup.send(tmp_path)  # one commit again: at once
        assert builds.done.wait(5)
        assert time.monotonic() - woken < 0.9
    finally:
        watcher.stop()
        thread.join(5)
