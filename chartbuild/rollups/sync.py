"""Which rollups the generators declare, and ``migrate`` keeping the database in step."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError

from chartbuild import conf
from chartbuild.declare import catalog
from chartbuild.exceptions import GeneratorError
from chartbuild.rollups import store
from chartbuild.rollups.rollup import Rollup

logger = logging.getLogger(__name__)


def declared(cat: catalog.Catalog | None = None) -> tuple[list[Rollup], bool]:
    """The rollups the generators' modules hold (declared there or imported), by name, and
    whether every generator could be imported (if not, some may be missing)."""
    cat = cat or catalog.load()
    found: dict[str, Rollup] = {}
    complete = True
    for generator in cat.generators:
        if generator.error:
            complete = False
            continue
        try:
            module = catalog.import_generator(generator.module)
        except GeneratorError:
            complete = False
            continue
        for value in vars(module).values():
            if isinstance(value, Rollup):
                found.setdefault(value.name, value)
    return [found[name] for name in sorted(found)], complete


def named(name: str) -> Rollup:
    """The declared rollup ``name``; :class:`LookupError` if none."""
    for rollup in declared()[0]:
        if rollup.name == name:
            return rollup
    raise LookupError(f"no generator declares a rollup named {name!r}")


def on_post_migrate(using: str, verbosity: int = 1, stdout: Any = None, **kwargs: Any) -> None:
    """``post_migrate`` receiver: make, fill, make again or drop the rollups. A failure is
    reported, not raised: the migrations are applied already."""
    if using != conf.database():
        return
    rollups, complete = declared()
    try:
        report = store.sync(rollups, using, drop_others=complete)
    except DatabaseError as exc:
        logger.error(
            "chartbuild could not make its rollups in database %r: %s. Charts read them by"
            " the full query until it can: run `manage.py migrate` again once the migrating"
            " role may create tables and triggers.",
            using,
            exc,
        )
        return
    if report and verbosity >= 1 and stdout is not None:
        stdout.write(report.summary() + "\n")
