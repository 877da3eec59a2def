import gc
import os
import threading

import pytest

from chartbuild.build import interrupts, render, runner

SPEC = {
    "mark": "bar",
    "data": {"values": [{"a": "x", "b": 1}, {"a": "y", "b": 2}]},
    "encoding": {
        "x": {"field": "a", "type": "nominal"},
        "y": {"field": "b", "type": "quantitative"},
    },
}


@pytest.fixture
def workers():
    yield
    render.shutdown()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def in_thread(function, *args):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function(*args)))
    thread.start()
    thread.join(60)
    return result["value"]


def test_a_worker_thread_renders_in_a_worker_process(workers):
    svg, png = in_thread(render.images, SPEC)
    assert svg.startswith("<svg") and png.startswith(b"\x89PNG")
    assert render._pool is not None and render._ready.wait(30)
    pids = list(render._pool._processes)
    assert pids and os.getpid() not in pids


def test_shutdown_ends_the_workers_and_a_render_starts_them_again(workers):
    in_thread(render.images, SPEC)
    pids = list(render._pool._processes)
    render.shutdown()
    assert render._pool is None
    for _ in range(200):
        if not any(alive(pid) for pid in pids):
            break
        threading.Event().wait(0.01)
    assert not any(alive(pid) for pid in pids)
    # started again when needed
    svg, _ = in_thread(render.images, SPEC)
    assert svg.startswith("<svg")


def test_a_stopped_process_ends_its_workers_at_once_even_while_they_practise(workers, monkeypatch):
    """On its way out, a stopped doit auto (or build) waited for its workers to end, and
    they end only once they have drawn what they draw: at the start, a second of
    practice, so SIGTERM ended the builder at its deadline, not by its own way out."""
    render.start_workers(practise=True)
    pids = list(render._workers()._processes)
    assert pids
    stop = threading.Event()
    stop.set()
    monkeypatch.setattr(interrupts, "_requested", stop)  # as after SIGTERM
    render.shutdown()
    for _ in range(30):
        if not any(alive(pid) for pid in pids):
            break
        threading.Event().wait(0.01)
    assert not any(alive(pid) for pid in pids)


def test_a_long_lived_builders_workers_practise_and_a_one_off_builds_do_not(workers, monkeypatch):
    """doit auto's workers draw the practice charts as they start (and again after a
    restart); a one-off build's workers only start the engine, its first chart waits."""
    monkeypatch.setattr(render, "_practise", False)
    render.start_workers()
    assert not render._workers().submit(render._has_practised).result(60)
    render.shutdown()
    render.start_workers(practise=True)
    assert render._workers().submit(render._has_practised).result(60)
    render.shutdown()
    svg, _ = in_thread(render.images, SPEC)  # started again by a render: as before
    assert svg.startswith("<svg")
    assert render._workers().submit(render._has_practised).result(60)


def test_a_practice_chart_that_cannot_be_drawn_does_not_fail_the_start(monkeypatch):
    """A worker's start runs the practice: raising there would break the pool for good."""
    monkeypatch.setattr(render, "PRACTICE", [{"mark": "no-such-mark"}, SPEC])
    monkeypatch.setattr(render, "_practised", False)
    render._warm(practise=True)
    assert render._practised


def test_the_practice_charts_render():
    for spec in render.PRACTICE:
        svg, png = render._images(spec)
        assert svg.startswith("<svg") and png.startswith(b"\x89PNG")


@pytest.mark.django_db(transaction=True)
def test_a_one_off_doit_freezes_its_objects_once_its_build_is_saved(tmp_path):
    """Its exit skips the collections over the task graph and every module."""
    import re

    from django.contrib.auth.models import User

    from tests.doit import Build

    User.objects.create(username="ada")
    build = Build(tmp_path, generators=["tests.generators.reports_freeze"])
    result = build.run(process=True)  # a one-off doit: its exit is the point
    assert result.returncode == 0, result.stderr
    assert (build.out / "reports_freeze" / "one.json").exists()
    assert int(re.search(r"frozen at exit: (\d+)", result.stderr)[1]) > 10_000


@pytest.mark.django_db(transaction=True)
def test_an_in_process_build_keeps_its_workers_and_leaves_the_collector_alone(
    settings, tmp_path, workers
):
    """A long-lived process (doit auto, a web server's hook) keeps its render workers warm
    and must not freeze its objects: only a one-off doit prepares to exit."""
    from django.contrib.auth.models import User

    settings.CHARTBUILD_OUTPUT_DIR = tmp_path / "charts"
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    settings.CHARTBUILD_PARALLEL = 2
    User.objects.create(username="ada")
    assert gc.get_freeze_count() == 0
    result = runner.build()
    assert result.ok and "users.signups_per_month" in result.charts
    assert render._pool is not None
    assert all(alive(pid) for pid in render._pool._processes)
    assert gc.get_freeze_count() == 0
