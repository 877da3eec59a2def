"""``manage.py chartbuild capture [--install | --remove]`` and ``manage.py chartbuild status``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from chartbuild import conf
from chartbuild.capture import triggers as capture
from chartbuild.declare import catalog
from chartbuild.live import status


class Command(BaseCommand):
    help = (
        "chartbuild's state in the database. `capture`: the triggers on the tables charts "
        "read; `status`: who builds, the last export, the lag."
    )
    requires_system_checks: list[str] = []  # it mends what chartbuild.E010 reports

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        listing = commands.add_parser(
            "capture",
            help="list the tables charts read and their change-capture triggers",
            description="List every table the charts read with its capture state; "
            "--install brings the triggers up to date (as migrate does), --remove drops them.",
        )
        action = listing.add_mutually_exclusive_group()
        action.add_argument("--install", action="store_true", help="install or update them")
        action.add_argument("--remove", action="store_true", help="remove every one of them")
        commands.add_parser(
            "status",
            help="who builds, when changes were last exported, how far behind the charts are",
            description="The leading builder (or this state directory's build lock), the last "
            "export of any builder, and the lag: how long the oldest committed change that "
            "no publication contains yet has waited.",
        )

    def handle(self, *args: Any, command: str, **options: Any) -> None:
        try:
            if command == "status":
                for line in status.current().lines():
                    self.stdout.write(line)
            else:
                self.capture(install=options["install"], remove=options["remove"])
        except DatabaseError as exc:
            raise CommandError(
                f"cannot read database {conf.database()!r}: {exc}. Is it reachable, and has "
                "`manage.py migrate` been run?"
            ) from exc

    def capture(self, *, install: bool, remove: bool) -> None:
        backend = capture.for_database()
        if remove:
            removed = backend.remove()
            self.stdout.write(f"removed the triggers of {', '.join(removed) or 'no table'}")
            return
        cat = catalog.load()
        if install:
            report = capture.sync(cat=cat)
            self.stdout.write(report.summary() if report else "the triggers were up to date")
        watched = capture.watched_tables(cat)
        kind = "triggers" if backend.triggers else "Django's connection only"
        self.stdout.write(
            f"database {conf.database()!r} ({backend.connection.vendor}), captured by {kind}"
        )
        status = backend.status(watched)
        if not status:
            self.stdout.write("no chart reads a table")
            return
        width = max(len(table) for table in status)
        for table, state in sorted(status.items()):
            readers = ", ".join(sorted(watched.get(table, ()))) or "no chart"
            self.stdout.write(f"{table:<{width}}  {state:<12}  {readers}")
