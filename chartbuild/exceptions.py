"""The errors chartbuild raises; each message names what failed and what to do."""


class ChartbuildError(Exception):
    """Base class of chartbuild's errors."""


class GeneratorError(ChartbuildError):
    """A generator module could not be imported."""


class ChartError(ChartbuildError):
    """A chart or number function failed or returned something unusable."""


class OutputError(ChartbuildError):
    """An output could not be written (a full disk, a read-only or vanished directory)."""


class ExportError(ChartbuildError):
    """The change events could not be read (database unreachable, table missing)."""


class LockTimeout(ChartbuildError):
    """Another build held the build lock for longer than we were willing to wait."""


class BuildFailed(ChartbuildError):
    """A build ran and some of its tasks failed; the message lists them."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a database error's can run to several),
    or its type's name if it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
