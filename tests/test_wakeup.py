import threading

from chartbuild.live import wakeup


def test_without_a_listener_sending_is_a_no_op(tmp_path):
    assert wakeup.send(tmp_path) is False


def test_a_listener_receives_each_wake_up(tmp_path):
    listener = wakeup.Listener(tmp_path)
    try:
        assert wakeup.send(tmp_path) is True
        assert wakeup.send(tmp_path) is True
        assert listener.pending() == 2
        assert listener.pending() == 0
    finally:
        listener.close()


def test_state_directories_do_not_hear_each_other(tmp_path):
    listener = wakeup.Listener(tmp_path / "a")
    try:
        wakeup.send(tmp_path / "b")
        assert listener.pending() == 0
    finally:
        listener.close()


def test_a_full_queue_does_not_raise(tmp_path):
    listener = wakeup.Listener(tmp_path)
    try:
        for _ in range(5000):
            assert wakeup.send(tmp_path) is True
    finally:
        listener.close()


def test_serve_calls_back_from_a_thread(tmp_path):
    listener = wakeup.Listener(tmp_path)
    woken = threading.Event()
    listener.serve(woken.set)
    try:
        wakeup.send(tmp_path)
        assert woken.wait(2)
    finally:
        listener.close()
    assert wakeup.send(tmp_path) is False  # closed: nobody listens any more
