"""``manage.py gen GENERATOR [GENERATOR ...]``: build those generators only."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chartbuild.build import runner
from chartbuild.declare import catalog
from chartbuild.exceptions import ChartbuildError


class Command(BaseCommand):
    help = "Build the charts, numbers and dashboard of the named generators."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("generators", nargs="+", metavar="GENERATOR")
        parser.add_argument(
            "-q", "--quiet", action="store_true", help="print nothing unless a chart fails"
        )

    def handle(self, *args: Any, generators: list[str], quiet: bool, **options: Any) -> None:
        known = [g.name for g in catalog.load().generators]
        unknown = [name for name in generators if name not in known]
        if unknown:
            raise CommandError(
                f"unknown generator{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"known generators: {', '.join(known) or 'none'}"
            )
        try:
            result = runner.build_or_raise([f"gen:{name}" for name in generators])
        except ChartbuildError as exc:
            raise CommandError(str(exc)) from exc
        if not quiet:
            self.stdout.write(result.summary())
