"""``manage.py gencharts [-s MINUTES] [-q]``: build every chart, once or every N minutes."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chartbuild.build import interrupts, runner
from chartbuild.exceptions import ChartbuildError
from chartbuild.live import leader, reconnect
from chartbuild.live.watcher import Outage


def minutes(value: str) -> float:
    """``5``, ``0.5`` or ``=5`` (as in ``-s=5``): a positive number of minutes."""
    number = float(value.lstrip("="))
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Export new model change events and build every chart and number that is out of date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-s",
            "--schedule",
            type=minutes,
            metavar="MINUTES",
            help="build again every MINUTES minutes until stopped (Ctrl-C or SIGTERM)",
        )
        parser.add_argument(
            "-q", "--quiet", action="store_true", help="print nothing unless a chart fails"
        )

    def handle(self, *args: Any, schedule: float | None, quiet: bool, **options: Any) -> None:
        if schedule is None:
            try:
                result = runner.build_or_raise()
            except ChartbuildError as exc:
                raise CommandError(str(exc)) from exc
            if not quiet:
                self.stdout.write(result.summary())
            return
        # Ctrl-C and SIGTERM stop it at once, in the middle of a build or a query too
        interrupts.install()
        stop = threading.Event()
        reconnect.watch()
        self.outage = Outage()
        leadership = leader.for_builder(say=(lambda text: None) if quiet else self.stdout.write)
        try:
            while not stop.is_set():
                if leadership is not None and not leadership.wait(stop):
                    break  # stopped while a standby
                self.build_in_schedule(quiet, leadership)
                stop.wait(schedule * 60)
        except KeyboardInterrupt:
            pass
        finally:
            if leadership is not None:
                leadership.release()

    def build_in_schedule(self, quiet: bool, leadership: leader.Leadership | None) -> None:
        """One scheduled build: failures are reported (once while they repeat) and the
        schedule goes on; a lost database connection is opened again."""
        try:
            result = runner.build(
                reset=bool(reconnect.refresh()),
                lead_session=leadership.session if leadership is not None else None,
            )
        except ChartbuildError as exc:
            self.report_not_run(str(exc))
            return
        if "export" in result.failures and not result.charts:
            self.report_not_run(result.failure_report())
            return
        ended = self.outage.over()
        if ended:
            self.stdout.write("builds again after: " + ended.splitlines()[0])
        if not result.ok:
            self.stderr.write(f"{result.summary()}\n{result.failure_report()}")
        elif not quiet:
            self.stdout.write(result.summary())

    def report_not_run(self, reason: str) -> None:
        if self.outage.still(reason):
            self.stderr.write(f"build not run (retrying at every scheduled build): {reason}")
