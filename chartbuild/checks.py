"""System checks: configuration mistakes reported by ``manage.py check`` with ids and hints.

Every id, with the problem it reports, is listed once in :data:`chartbuild.problems.CHECKS`
(the documentation's table is made from it); :func:`_known` refuses any other.

E010, W002 and W006 look at the database (``CHARTBUILD_DATABASE``): they are ``database``
checks, run by ``manage.py check --database default``, and skipped when it cannot be
reached or is not migrated yet.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connections, models
from django.urls import NoReverseMatch, reverse

from chartbuild import conf, names, problems
from chartbuild.build import reads
from chartbuild.capture import receivers
from chartbuild.declare import catalog
from chartbuild.declare.registry import model_label, resolve_model
from chartbuild.publish import outputs, storage
from chartbuild.site import permissions

TRACKED_OPERATIONS = {"c", "u", "d"}


def _known(messages: list[CheckMessage]) -> list[CheckMessage]:
    """``messages``, once each id is known to be one of ``problems.CHECKS``."""
    for message in messages:
        problems.known(str(message.id))
    return messages


@register(Tags.compatibility)
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001 to E009, E011 to E021, W001, W003 to W005: the settings and the generators."""
    return _known(_configuration())


def _configuration() -> list[CheckMessage]:
    generators = conf.GENERATORS.value()
    if not isinstance(generators, list | tuple) or not all(isinstance(g, str) for g in generators):
        return [
            Error(
                f"CHARTBUILD_GENERATORS must be a list of dotted module paths, not {generators!r}",
                hint='For example CHARTBUILD_GENERATORS = ["myproject.charts"].',
                id="chartbuild.E007",
            )
        ]
    settings_errors = _settings_errors()
    if settings_errors:
        return settings_errors
    if not apps.is_installed("mqueue"):
        return [
            Error(
                "chartbuild needs django-mqueue: 'mqueue' is not in INSTALLED_APPS",
                hint="Add 'mqueue' to INSTALLED_APPS and run migrate.",
                id="chartbuild.E008",
            )
        ]
    messages: list[CheckMessage] = _app_order()
    cat = catalog.load()
    messages += [Error(p.msg, hint=p.hint, obj=p.generator or None, id=p.id) for p in cat.problems]
    if conf.hook_mode() == "build":
        messages += _untracked(cat)
    messages += _mqueue_models()
    messages += _undeclared_reads(cat)
    messages += _permissions(cat)
    return messages


def _settings_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    hook = conf.HOOK.value()
    if hook not in conf.HOOK_MODES:
        errors.append(
            Error(
                f"CHARTBUILD_HOOK must be one of {', '.join(map(repr, conf.HOOK_MODES))}, "
                f"not {hook!r}",
                hint='"signal" wakes a running `doit auto`; "build" builds in the saving process.',
                id="chartbuild.E009",
            )
        )
    capture = conf.CAPTURE.value()
    if capture not in conf.CAPTURE_MODES:
        errors.append(
            Error(
                f"CHARTBUILD_CAPTURE must be one of {', '.join(map(repr, conf.CAPTURE_MODES))}, "
                f"not {capture!r}",
                hint='"auto" installs database triggers where it can; "orm" captures the writes '
                "made through Django only.",
                id="chartbuild.E011",
            )
        )
    keep = conf.KEEP_EVENTS.value()
    if keep is not None and not (isinstance(keep, timedelta) and keep > timedelta(0)):
        errors.append(
            Error(
                f"CHARTBUILD_KEEP_EVENTS must be a positive timedelta or None, not {keep!r}",
                hint="For example CHARTBUILD_KEEP_EVENTS = timedelta(days=30); None keeps all.",
                id="chartbuild.E013",
            )
        )
    mode = conf.SENDFILE.value() or ""
    if mode not in conf.SENDFILE_MODES:
        errors.append(
            Error(
                f"CHARTBUILD_SENDFILE must be one of "
                f"{', '.join(map(repr, conf.SENDFILE_MODES))}, not {mode!r}",
                hint='"" lets Django send the files; "X-Sendfile" suits Apache and lighttpd, '
                '"X-Accel-Redirect" nginx (with CHARTBUILD_SENDFILE_URL).',
                id="chartbuild.E016",
            )
        )
    errors.extend(
        _seconds(
            conf.LIVE_INTERVAL,
            "Open pages look for a new build this often.",
            "chartbuild.E017",
        )
    )
    errors.extend(_leader())
    errors.extend(_storage())
    try:
        conf.max_lag()
    except ValueError as exc:
        errors.append(
            Error(
                str(exc),
                hint="For example CHARTBUILD_MAX_LAG = 600 (seconds), timedelta(minutes=10), "
                "(300, 600) to warn and fail apart, or None for no limit.",
                id="chartbuild.E022",
            )
        )
    return errors


def _storage() -> list[CheckMessage]:
    """E020, E021: the storage the outputs are published to."""
    grace = conf.STORAGE_GRACE.value()
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        return [
            Error(
                f"CHARTBUILD_STORAGE_GRACE must be a number of seconds, 0 or more, not {grace!r}",
                hint="Files the manifest no longer names are kept this long; the default is "
                f"{conf.STORAGE_GRACE.default}.",
                id="chartbuild.E021",
            )
        ]
    if not storage.configured():
        return []
    try:
        store = storage.get()
    except Exception as exc:  # its backend or options: Django says which
        problem = f"{type(exc).__name__}: {exc}"
    else:
        # django-storages names the option per backend; a local storage is written directly
        keeps = [
            option
            for option in ("file_overwrite", "overwrite_files", "allow_overwrite")
            if getattr(store, option, True) is False
        ]
        if not keeps or storage.local_path(store, outputs.manifest()) is not None:
            return []
        problem = f"{keeps[0]} is False: manifest.json could not be replaced"
    return [
        Error(
            f"{storage.describe()} cannot be used to publish the outputs: {problem}",
            hint="Fix its BACKEND and OPTIONS, or remove it to serve the output directory.",
            id="chartbuild.E020",
        )
    ]


def _seconds(setting: conf.Setting, hint: str, check_id: str) -> list[CheckMessage]:
    """An error if ``setting`` is not a positive number of seconds."""
    name, value = setting.name, setting.value()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return [
            Error(
                f"{name} must be a positive number of seconds, not {value!r}",
                hint=f"{hint} The default is {setting.default}.",
                id=check_id,
            )
        ]
    return []


def _leader() -> list[CheckMessage]:
    """E018, E019: how builders on several machines elect the one that builds."""
    errors: list[CheckMessage] = []
    mode = conf.LEADER.value()
    vendor = connections[conf.database()].vendor
    if mode is not None and mode not in conf.LEADER_MODES:
        errors.append(
            Error(
                f"CHARTBUILD_LEADER must be one of {', '.join(map(repr, conf.LEADER_MODES))},"
                f" not {mode!r}",
                hint='"postgres" elects one builder among all machines (PostgreSQL only); '
                '"file" locks the state directory only.',
                id="chartbuild.E018",
            )
        )
    elif mode == "postgres" and vendor != "postgresql":
        errors.append(
            Error(
                f'CHARTBUILD_LEADER = "postgres" needs a PostgreSQL database; database'
                f" {conf.database()!r} is {vendor}",
                hint='Remove the setting, or set it to "file".',
                id="chartbuild.E018",
            )
        )
    errors.extend(
        _seconds(
            conf.LEADER_RETRY,
            "Standby builders try to lead this often.",
            "chartbuild.E019",
        )
    )
    errors.extend(
        _seconds(
            conf.LEADER_LEASE,
            "A leader that has not renewed its lease for this long is replaced.",
            "chartbuild.E019",
        )
    )
    return errors


def _permissions(cat: catalog.Catalog) -> list[CheckMessage]:
    """E015: permissions that name no permission of an installed model."""
    known = permissions.known()
    found: list[tuple[str, str]] = []
    wrong = permissions.problem(conf.default_permission(), known)
    if wrong:
        found.append(("CHARTBUILD_DEFAULT_PERMISSION", wrong))
    wrong = permissions.problem(conf.metrics_permission(), known)
    if wrong:
        found.append(("CHARTBUILD_METRICS_PERMISSION", wrong))
    for generator in cat.generators:
        if generator.error:
            continue
        wrong = permissions.problem(generator.permission, known)
        if wrong:
            found.append((f"{generator.module}.PERMISSION", wrong))
        for declaration in generator.declarations:
            wrong = permissions.problem(declaration.permission, known)
            if wrong:
                found.append((f"{declaration.kind} {generator.name}.{declaration.name}", wrong))
    return [
        Error(
            f"{where}: permission {wrong}",
            hint="Use 'app_label.codename' of an installed model (such as 'shop.view_order'), "
            "'staff', 'signed_in', 'anyone', or a callable that takes the user.",
            id="chartbuild.E015",
        )
        for where, wrong in found
    ]


def _app_order() -> list[CheckMessage]:
    names = [config.name for config in apps.get_app_configs()]
    if names.index("chartbuild") < names.index("mqueue"):
        return [
            Error(
                "'chartbuild' comes before 'mqueue' in INSTALLED_APPS: chartbuild cannot guard "
                "mqueue's receivers, so a save() of a model without an admin page raises "
                "NoReverseMatch",
                hint="List 'chartbuild' after 'mqueue' in INSTALLED_APPS.",
                id="chartbuild.E012",
            )
        ]
    return []


def _untracked(cat: catalog.Catalog) -> list[CheckMessage]:
    """W001: with the "build" hook, only mqueue's events start a build."""
    tracked = _tracked_models()
    readers = cat.readers(cat.models())
    messages: list[CheckMessage] = []
    for model in cat.models():
        missing = TRACKED_OPERATIONS - tracked.get(model, set())
        if missing:
            messages.append(
                Warning(
                    f"{model} is read by {', '.join(readers[model])} but MQUEUE_AUTOREGISTER "
                    f"does not track its {'/'.join(sorted(missing))} events: with "
                    'CHARTBUILD_HOOK = "build", those changes are built by the next build only',
                    hint=f'Add ("{_dotted(model)}", ["c", "u", "d"]) to MQUEUE_AUTOREGISTER.',
                    id="chartbuild.W001",
                )
            )
    return messages


def _mqueue_models() -> list[CheckMessage]:
    """W003, W005: models whose save() mqueue cannot record an event for."""
    messages: list[CheckMessage] = []
    for model, _ in receivers.tracked():
        pk = model._meta.pk
        if not isinstance(pk, models.IntegerField) or pk.attname != "id":
            messages.append(
                Warning(
                    f"{model._meta.label} has primary key {pk.name!r} ({pk.get_internal_type()}): "
                    "mqueue needs an integer primary key named 'id' (it links its events "
                    "through instance.id and stores the key as an integer), so its saves leave "
                    "no mqueue event",
                    hint="chartbuild's change capture still sees its changes; remove it from "
                    "MQUEUE_AUTOREGISTER to silence this.",
                    obj=model,
                    id="chartbuild.W005",
                )
            )
            continue
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_change"
        try:
            reverse(name, args=[1])
        except NoReverseMatch:
            messages.append(
                Warning(
                    f"{model._meta.label} has no admin change page ({name!r} does not reverse): "
                    "mqueue cannot give its events an admin link, so chartbuild records none",
                    hint="Register it with the admin (admin.site.register) and route "
                    "admin.site.urls, or remove it from MQUEUE_AUTOREGISTER. Its changes reach "
                    "the charts through chartbuild's change capture either way.",
                    obj=model,
                    id="chartbuild.W003",
                )
            )
    return messages


def _undeclared_reads(cat: catalog.Catalog) -> list[CheckMessage]:
    """W004: reads the last build recorded that the chart does not declare."""
    messages: list[CheckMessage] = []
    for generator in cat.generators:
        for declaration in generator.declarations:
            read = outputs.read_record(generator.name, declaration.name).reads
            undeclared = reads.undeclared(read, declaration.models)
            if undeclared:
                task = names.task_name(generator.name, declaration.name)
                messages.append(
                    Warning(
                        f"the last build saw {reads.message(task, undeclared)}",
                        hint=f"List {', '.join(undeclared)} in models=[...] of {task}, or set "
                        "CHARTBUILD_STRICT_READS = True to make such reads fail the build.",
                        obj=task,
                        id="chartbuild.W004",
                    )
                )
    return messages


@register(Tags.database)
def check_capture(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """E010, W002, W006: how the tables charts read are captured in the database; W007,
    W008: how it keeps the rollups (a warning: a rollup it does not keep is read by the
    full query, which is never wrong, and ``migrate``, which makes it, runs these checks).

    Tagged ``database``, as Django's own checks that query it: ``manage.py check
    --database default`` runs them, other commands (``migrate`` among them, which
    installs the triggers) do not.
    """
    if _settings_errors() or not apps.is_installed("mqueue"):
        return []
    return _known([*_capture(databases), *_rollups(databases)])


def _rollups(databases: Any) -> list[CheckMessage]:
    from chartbuild.rollups import store
    from chartbuild.rollups import sync as rollups

    using = conf.database()
    if databases is None or using not in databases:
        return []
    found, _ = rollups.declared()
    if not found:
        return []
    if not store.supported(using):
        return [
            Warning(
                f"database {using!r} ({connections[using].vendor}) does not keep rollups "
                f"({', '.join(r.name for r in found)}): each read runs the full GROUP BY query "
                "(correct, but its cost grows with the table)",
                hint="Use PostgreSQL or SQLite with CHARTBUILD_CAPTURE = 'auto'.",
                id="chartbuild.W007",
            )
        ]
    messages: list[CheckMessage] = []
    try:
        if not store.migrated(using):
            return []  # not migrated yet: `migrate` makes everything
        states = {r.name: store.state(r, using) for r in found}
    except DatabaseError:
        return []  # unreachable: the builds say so
    for name, state in sorted(states.items()):
        if state in (store.NOT_MADE, store.OUTDATED):
            messages.append(
                Warning(
                    f"rollup {name!r} is {state.split(':')[0]} in database {using!r}: its "
                    "charts read the full query until it is",
                    hint="Run `manage.py migrate`: it makes and fills chartbuild's rollups.",
                    obj=name,
                    id="chartbuild.W008",
                )
            )
    return messages


def _capture(databases: Any) -> list[CheckMessage]:
    from chartbuild.capture import triggers as capture

    using = conf.database()
    if databases is None or using not in databases:
        return []  # as Django's own database checks: only when asked for that database
    cat = catalog.load()
    watched = capture.watched_tables(cat)
    if not watched:
        return []
    backend = capture.for_connection(connections[using])
    if not backend.triggers:
        return [
            Warning(
                f"database {using!r} ({connections[using].vendor}) gets no capture triggers "
                f"(CHARTBUILD_CAPTURE = {conf.capture()!r}): chartbuild sees the writes made "
                "through Django only, not those of other programs",
                hint="Use PostgreSQL or SQLite with CHARTBUILD_CAPTURE = 'auto' to see every "
                "write; until then rebuild by hand after other programs write (doit -a).",
                id="chartbuild.W002",
            )
        ]
    try:
        if not backend.log_exists():
            return []  # not migrated yet: `migrate` installs everything
        status = backend.status(watched, capture.watched_columns(cat))
    except DatabaseError:
        return []  # unreachable: the builds say so, naming the database
    messages: list[CheckMessage] = []
    for table, state in sorted(status.items()):
        models = ", ".join(sorted(watched.get(table, ())))
        if state in (capture.MISSING, capture.OUTDATED) and not _migrating():
            messages.append(
                Error(
                    capture.problem(table, state, watched.get(table, ())),
                    hint="Run `manage.py migrate`: it installs chartbuild's triggers.",
                    obj=table,
                    id="chartbuild.E010",
                )
            )
        elif state == capture.NOT_A_TABLE:
            messages.append(
                Warning(
                    f"{models} is stored in {table!r}, which is a view, not a table: "
                    "chartbuild cannot capture writes to the tables behind it",
                    hint="Declare the models of the tables it selects from in models=[...].",
                    obj=table,
                    id="chartbuild.W006",
                )
            )
    return messages


def _migrating() -> bool:
    """Whether ``manage.py migrate`` runs these checks: it installs the triggers they find
    missing or outdated right after (its ``post_migrate``), so it must not be stopped."""
    from django.core.management.commands.migrate import Command as Migrate

    frame = sys._getframe(1)
    while frame is not None:
        if isinstance(frame.f_locals.get("self"), Migrate):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _tracked_models() -> dict[str, set[str]]:
    tracked: dict[str, set[str]] = {}
    for model, operations in receivers.tracked():
        tracked.setdefault(model_label(model), set()).update(operations)
    return tracked


def _dotted(model: str) -> str:
    cls = resolve_model(model)
    return f"{cls.__module__}.{cls.__name__}"
