"""A number, and at the exit of the process that imported it, how many objects the
garbage collector had frozen."""

import atexit
import gc
import sys

from chartbuild import number

atexit.register(lambda: sys.stderr.write(f"frozen at exit: {gc.get_freeze_count()}\n"))


@number(models=["auth.User"])
def one():
    return 1
