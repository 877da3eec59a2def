"""``manage.py chartbuild capture [--install | --remove]``, ``status``, ``why``,
``freshness``, ``rollups`` and ``verify [NAME ...] [--no-repair]``."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from chartbuild import conf, names
from chartbuild.build import why as explain
from chartbuild.capture import triggers as capture
from chartbuild.declare import catalog, tables
from chartbuild.live import status
from chartbuild.publish import freshness
from chartbuild.rollups import store
from chartbuild.rollups import sync as rollups


class Command(BaseCommand):
    help = (
        "chartbuild's state in the database. `capture`: the triggers on the tables charts "
        "read; `status`: who builds, the last export, the lag; `freshness`: each chart's lag "
        "against its limit (exit 1 when one is over); `rollups`: the rollups the "
        "database keeps; `verify`: each rollup against the full query."
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
        fresh = commands.add_parser(
            "freshness",
            help="each chart's lag against its limit; exits 1 when one is over its error limit",
            description="How far behind its committed changes each chart and number is "
            "(the oldest change its published output lacks), against its max_lag: pass, "
            "warn or error. Exits 0 when none is in error, 1 when one is, 2 when the "
            "database cannot tell.",
        )
        fresh.add_argument(
            "--select",
            action="append",
            default=[],
            metavar="PATTERN",
            help="only these: a generator, a task (generator.name) or a pattern (shop.*); "
            "may be repeated",
        )
        fresh.add_argument("--format", choices=("text", "json"), default="text")
        fresh.add_argument(
            "-o", "--output", metavar="FILE", help="also write the JSON report to FILE"
        )
        why = commands.add_parser(
            "why",
            help="why a chart was built (its last builds), or which charts a write to a "
            "model rebuilds",
            description="For a chart or number (generator.name): the reasons of its last "
            "builds, down to the statements that wrote what it reads. For a model "
            "(app_label.model): the charts and numbers a write to it rebuilds, and why the "
            "others do not.",
        )
        why.add_argument("target", metavar="TASK_OR_MODEL")
        why.add_argument("--format", choices=("text", "json"), default="text")
        why.add_argument("--last", type=int, default=3, help="builds shown (default 3)")
        commands.add_parser(
            "rollups",
            help="list the rollups, how the database keeps them, their buckets and pending rows",
            description="Every rollup the generators declare: its base table, its state "
            "(maintained, not made or outdated until migrate, or recomputed at each read), "
            "its buckets and the differences written but not folded yet.",
        )
        verify = commands.add_parser(
            "verify",
            help="compare rollups with the full query, and fill again those that differ",
            description="Compare each rollup (or those named) with the full GROUP BY query of "
            "its base table, name every bucket that differs, and fill it again from the "
            "table. Exits 1 when one differed.",
        )
        verify.add_argument("names", nargs="*", metavar="NAME", help="rollups (default: all)")
        verify.add_argument("--no-repair", action="store_true", help="only report the differences")

    def handle(self, *args: Any, command: str, **options: Any) -> None:
        try:
            if command == "status":
                for line in status.current().lines():
                    self.stdout.write(line)
            elif command == "why":
                self.why(options["target"], options["format"], options["last"])
            elif command == "freshness":
                self.freshness(options["select"], options["format"], options["output"])
            elif command == "rollups":
                self.rollups()
            elif command == "verify":
                self.verify(options["names"], repair=not options["no_repair"])
            else:
                self.capture(install=options["install"], remove=options["remove"])
        except DatabaseError as exc:
            raise CommandError(
                f"cannot read database {conf.database()!r}: {exc}. Is it reachable, and has "
                "`manage.py migrate` been run?",
                returncode=2 if command == "freshness" else 1,  # freshness: cannot tell
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
        status = backend.status(watched, capture.watched_columns(cat))
        if not status:
            self.stdout.write("no chart reads a table")
            return
        width = max(len(table) for table in status)
        for table, state in sorted(status.items()):
            readers = ", ".join(sorted(watched.get(table, ()))) or "no chart"
            self.stdout.write(f"{table:<{width}}  {state:<12}  {readers}")

    def freshness(self, select: list[str], fmt: str, output: str | None) -> None:
        def chosen(task: str) -> bool:
            generator = task.split(".", 1)[0]
            return not select or any(fnmatch.fnmatchcase(task, p) or p == generator for p in select)

        from django.utils import timezone

        found = freshness.check(catalog.load(), select=chosen)
        if select and not found:
            raise CommandError(f"no chart or number matches {', '.join(select)}", returncode=2)
        counts = {s: sum(f.status == s for f in found) for s in freshness.STATUSES}
        report = {
            "checked_at": timezone.now().isoformat(timespec="seconds"),
            "summary": counts,
            "results": [f.as_dict() for f in found],
        }
        text = json.dumps(report, indent=1) + "\n"
        if output:
            Path(output).write_text(text)
        if fmt == "json":
            self.stdout.write(text, ending="")
        else:
            width = max(len(f.task) for f in found) if found else 0
            for f in found:
                self.stdout.write(f"{f.task:<{width}}  {f.status:<5}  {_describe(f)}")
            self.stdout.write(
                f"{counts['pass']} pass, {counts['warn']} warn, {counts['error']} error"
            )
        if counts["error"]:
            raise CommandError(
                f"{counts['error']} chart(s) or number(s) over their freshness limit",
                returncode=1,
            )

    def why(self, target: str, fmt: str, last: int) -> None:
        cat = catalog.load()
        tasks = {
            names.task_name(g.name, d.name): (g, d) for g in cat.generators for d in g.declarations
        }
        if target in tasks:
            builds = explain.history(conf.state_dir(), target)[: max(1, last)]
            if fmt == "json":
                self.stdout.write(json.dumps({"task": target, "builds": builds}, indent=1))
                return
            if not builds:
                self.stdout.write(f"{target}: no build recorded in {conf.state_dir()}")
            for build in builds:
                self.stdout.write(f"{target} {build['outcome']} at {build['at']} because:")
                for line in explain.lines(build.get("why") or []):
                    self.stdout.write(f"  {line}")
            return
        try:
            written = tables.written_by(target)
        except LookupError:
            raise CommandError(
                f"{target!r} is neither a chart or number (generator.name) nor a model "
                "(app_label.model)"
            ) from None
        found = []
        for task, (_, declaration) in tasks.items():
            read = tables.of_models(declaration.models)
            through = sorted(m for m, t in read.items() if t & written)
            shared = sorted(set().union(*(read[m] & written for m in through)))
            found.append(
                {
                    "task": task,
                    "rebuilds": bool(through),
                    "why": f"reads {', '.join(shared)} through {', '.join(through)}"
                    if through
                    else f"reads none of {', '.join(sorted(written))}",
                }
            )
        if fmt == "json":
            data = {"model": target, "tables": sorted(written), "charts": found}
            self.stdout.write(json.dumps(data, indent=1))
            return
        self.stdout.write(f"a write to {target} ({', '.join(sorted(written))}):")
        for verdict in (True, False):
            chosen = [f for f in found if f["rebuilds"] is verdict]
            self.stdout.write(f"{'rebuilds' if verdict else 'does not rebuild'} {len(chosen)}:")
            for f in chosen:
                self.stdout.write(f"  {f['task']}: {f['why']}")

    def rollups(self) -> None:
        found, _ = rollups.declared()
        if not found:
            self.stdout.write("no generator declares a rollup")
            return
        rows = [
            (
                s.name,
                s.base_table,
                s.state,
                "-" if s.buckets is None else str(s.buckets),
                "-" if s.pending is None else str(s.pending),
            )
            for s in store.status(found)
        ]
        header = ("rollup", "base table", "state", "buckets", "pending")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))

    def verify(self, names: list[str], *, repair: bool) -> None:
        try:
            chosen = [rollups.named(n) for n in names] if names else rollups.declared()[0]
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        differed = False
        for rollup in chosen:
            found = store.verify(rollup, repair=repair)
            if not found:
                self.stdout.write(f"{rollup.name}: equal to the full query")
                continue
            differed = True
            done = "filled again" if repair else "not repaired (--no-repair)"
            self.stdout.write(f"{rollup.name}: {len(found)} bucket(s) differ, {done}:")
            for difference in found:
                self.stdout.write(f"  {difference}")
        if differed:
            raise CommandError("some rollups differed from the full query", returncode=1)


def _describe(found: freshness.Freshness) -> str:
    """A line's account of one chart's freshness."""
    if found.lag is None:
        return "never built"
    limit = "no limit" if found.limit is None else f"limit {found.limit[1]:g} s"
    text = f"{found.lag:.0f} s behind ({limit})"
    if found.oldest_pending:
        table, at = found.oldest_pending
        text += f"; oldest change waiting: {table} at {at.isoformat(timespec='seconds')}"
    if found.failed_at:
        text += f"; its last build failed at {found.failed_at}"
    return text
