"""Chart and number functions that raise what no function should: each fails its own task."""

import sys

from chartbuild import chart, number


class Unusual(BaseException):
    pass


@number(models=["auth.User"])
def exits():
    sys.exit(3)


@number(models=["auth.User"])
def interrupts():
    raise KeyboardInterrupt


@number(models=["auth.User"])
def unusual():
    raise Unusual("not an Exception")


@number(models=["auth.User"], label="Fine")
def fine():
    return 1


@chart(models=["auth.User"])
def also_fine():
    return {"mark": "bar", "data": {"values": [{"x": 1}]}, "encoding": {"x": {"field": "x"}}}
