import os
import signal
import subprocess
import sys
import time

import pytest

from chartbuild.build import lock
from chartbuild.exceptions import LockTimeout

HOLD = """
import sys, time
from pathlib import Path
from chartbuild.build import lock
held = lock.FileLock.take(Path(sys.argv[1]), timeout=5)
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_second_builder_is_told_who_holds_the_lock(tmp_path, holder):
    with pytest.raises(LockTimeout) as error:
        lock.acquire(tmp_path / "build.lock", timeout=0)
    assert f"pid {holder.pid}" in str(error.value)
    assert "CHARTBUILD_LOCK_TIMEOUT" in str(error.value)


def test_a_killed_builder_leaves_no_stale_lock(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    handle = lock.acquire(tmp_path / "build.lock", timeout=1)
    lock.release(handle)


def test_a_waiting_builder_gets_the_lock_when_it_is_released(tmp_path, holder):
    started = time.monotonic()
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {holder.pid}"])
    handle = lock.acquire(tmp_path / "build.lock", timeout=10)
    assert 0.4 < time.monotonic() - started < 5
    lock.release(handle)


def test_a_build_that_let_go_lets_the_next_one_in(tmp_path):
    first = lock.FileLock.take(tmp_path, timeout=0)
    first.release()
    first.release()  # once
    second = lock.FileLock.take(tmp_path, timeout=0)
    assert second.held and not second.inherited_crash
    second.release()


def test_threads_of_one_process_take_turns(tmp_path):
    import threading

    inside, overlaps = [], []

    def build():
        with lock.held(tmp_path, timeout=10):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1, 1, 1, 1]


def test_a_build_after_a_killed_one_knows_it_has_temporary_files_to_clear(tmp_path, holder):
    holder.kill()
    holder.wait()
    taken = lock.FileLock.take(tmp_path, timeout=1)
    assert taken.inherited_crash
    taken.release()
    again = lock.FileLock.take(tmp_path, timeout=1)
    assert not again.inherited_crash  # its holder let go normally
    again.release()
