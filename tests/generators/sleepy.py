"""A number that takes its time: ``CHARTBUILD_TEST_SLEEP`` seconds (none by default), and
as long as the file named by ``CHARTBUILD_TEST_HOLD`` exists (at most a minute), having
counted the users first. A build another can wait for, or one held in its middle."""

import os
import time
from pathlib import Path

from django.contrib.auth.models import User

from chartbuild import number


@number(models=["auth.User"])
def sleepy():
    counted = User.objects.count()  # before it waits: what it returns is what it read then
    time.sleep(float(os.environ.get("CHARTBUILD_TEST_SLEEP", "0")))
    hold = os.environ.get("CHARTBUILD_TEST_HOLD")
    deadline = time.monotonic() + 60
    while hold and Path(hold).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return counted
