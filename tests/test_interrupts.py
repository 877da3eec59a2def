import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.doit import Build, wait_until

ROOT = Path(__file__).resolve().parents[1]

# A process whose exit is held up twice: a database's cancel request that does not
# answer, and a thread that keeps the interpreter from leaving.
STUCK = textwrap.dedent(
    """
    import threading, time
    import django
    django.setup()
    from django.db.backends.signals import connection_created
    from chartbuild.build import interrupts

    class Unanswered:
        def cancel_safe(self, timeout):
            time.sleep(30)

    class Connection:
        vendor = "postgresql"
        alias = "elsewhere"
        connection = Unanswered()

    interrupts.install()
    held = Connection()  # the set of connections holds them weakly
    connection_created.send(sender=None, connection=held)
    threading.Thread(target=time.sleep, args=(30,)).start()
    print("ready", flush=True)
    time.sleep(30)
    """
)


def test_sigterm_ends_the_process_by_the_deadline_whatever_holds_it_up():
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(10)
        took = time.monotonic() - started
        assert code == 128 + signal.SIGTERM
        # The deadline is 0.7 s; the rest is the machine's.
        assert took < 3
    finally:
        if process.poll() is None:
            process.kill()


LEAVES = textwrap.dedent(
    """
    import atexit
    from chartbuild.build import interrupts

    atexit.register(print, "exit functions")
    interrupts.on_leave(lambda: print("asked first"))
    interrupts.leave(3)
    print("not reached")
    """
)


def test_a_stopped_process_leaves_by_what_was_asked_then_its_exit_functions():
    done = subprocess.run([sys.executable, "-c", LEAVES], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stdout.splitlines() == ["asked first", "exit functions"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("parallel", ["1", "2"])
def test_a_one_off_build_stopped_mid_chart_says_so_once_and_names_the_chart(tmp_path, parallel):
    from django.contrib.auth.models import User

    User.objects.create(username="first")
    build = Build(tmp_path, generators=["tests.generators.slow_query"])
    build.env["CHARTBUILD_PARALLEL"] = parallel
    started = tmp_path / "started"
    build.env["CHARTBUILD_TEST_STARTED"] = str(started)
    process = build.start(json_report=False)
    try:
        wait_until(started.exists, timeout=60)
        time.sleep(0.3)  # inside its query now
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in stdout + stderr
    said = [line for line in stderr.splitlines() if not line.startswith(("INFO ", "WARNING "))]
    assert said == [
        "chartbuild: stopped by SIGTERM; what was being built keeps its previous outputs,"
        " and the next build makes it"
    ]
    summary = stdout.splitlines()[-1]
    assert "failed 0" in summary
    assert "interrupted 1 (slow_query.slow: the next build makes them)" in summary
    assert "FAILED" not in stdout
