"""The catalog: which generators exist and what they declare.

Generators are ``<app>/charts.py`` of installed apps (named after the app label)
and the modules listed in ``CHARTBUILD_GENERATORS`` (named after their last
dotted part). Reading a generator's declarations means importing it, and a
generator imports Altair; so what each generator declares is cached in
``<state>/catalog.json``, keyed by its source file's size and mtime. A build with
nothing to do imports no generator at all.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from django.apps import apps

from chartbuild import conf
from chartbuild.declare.registry import (
    Declaration,
    declarations,
    resolve_model,
    stored_permission,
)
from chartbuild.exceptions import GeneratorError
from chartbuild.files import write_if_changed
from chartbuild.names import RESERVED_GENERATORS, RESERVED_NAMES, SAFE_NAME, task_name
from chartbuild.problems import Problem

CACHE_VERSION = 3

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generator:
    """A generator module and the charts and numbers it declares."""

    name: str
    module: str
    path: Path | None
    declarations: tuple[Declaration, ...] = ()
    error: str = ""
    #: The module's ``TITLE`` (default: its name, capitalised).
    title: str = ""
    #: The module's ``PERMISSION`` as the catalog keeps it (see ``Declaration.permission``).
    permission: str = ""
    #: The module's ``MAX_LAG`` as ``(warn, error)`` seconds (see ``Declaration.max_lag``).
    max_lag: tuple[float, float] | None = None

    def get(self, name: str) -> Declaration:
        for declaration in self.declarations:
            if declaration.name == name:
                return declaration
        raise KeyError(f"generator {self.name!r} declares no chart or number {name!r}")


@dataclass(frozen=True)
class Catalog:
    generators: tuple[Generator, ...]
    problems: tuple[Problem, ...] = field(default=())

    def generator(self, name: str) -> Generator:
        for generator in self.generators:
            if generator.name == name:
                return generator
        known = ", ".join(g.name for g in self.generators) or "none"
        raise KeyError(f"unknown generator {name!r}; known generators: {known}")

    def models(self) -> list[str]:
        """Every model a valid chart or number reads."""
        return list(self._models)

    @functools.cached_property
    def _models(self) -> tuple[str, ...]:
        bad = {(p.generator, p.name) for p in self.problems}
        return tuple(
            sorted(
                {
                    model
                    for g in self.generators
                    for d in g.declarations
                    if (g.name, d.name) not in bad and (g.name, "") not in bad
                    for model in d.models
                }
            )
        )

    def problems_of(self, generator: str, name: str = "") -> list[Problem]:
        return [p for p in self.problems if p.generator == generator and p.name in ("", name)]

    def readers(self, models: Iterable[str]) -> dict[str, list[str]]:
        """``{model: tasks of the charts and numbers that read it}`` for each of ``models``."""
        wanted = set(models)
        found: dict[str, list[str]] = {}
        for generator in self.generators:
            for declaration in generator.declarations:
                for model in wanted.intersection(declaration.models):
                    found.setdefault(model, []).append(task_name(generator.name, declaration.name))
        return found

    def generators_reading(self, models: Iterable[str]) -> list[str]:
        """Names of the generators with a chart or number that reads one of ``models``."""
        return sorted(
            {task.split(".", 1)[0] for tasks in self.readers(models).values() for task in tasks}
        )


def locate() -> list[tuple[str, str, Path | None]]:
    """``(name, module, source path)`` of every configured generator, without importing it."""
    found: list[tuple[str, str, Path | None]] = []
    if conf.autodiscover():
        for app_config in apps.get_app_configs():
            path = Path(app_config.path) / "charts.py"
            if path.is_file():
                found.append((app_config.label, f"{app_config.name}.charts", path))
    for module in conf.generators():
        found.append((str(module).rsplit(".", 1)[-1], str(module), _source(str(module))))
    return found


def _source(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.has_location:
        return None
    return Path(spec.origin)


#: Source mtime of each generator module when this process imported it.
_imported: dict[str, int | None] = {}


_import_guard = threading.RLock()


def import_generator(module: str) -> ModuleType:
    """Import a generator module, re-reading it if its source changed since it was imported.

    Anything the module raises while it is imported (``SystemExit`` included) is a
    :class:`GeneratorError`. Threads of a parallel build import one at a time.
    """
    with _import_guard:
        try:
            loaded = sys.modules.get(module)
            if loaded is not None and _imported.get(module) != _mtime(loaded):
                # Import afresh, not reload: reload keeps functions the new source removed.
                sys.modules.pop(module, None)
                loaded = None
            if loaded is None:
                loaded = importlib.import_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            raise GeneratorError(
                f"generator module {module!r} cannot be imported: {detail}"
            ) from exc
        _imported[module] = _mtime(loaded)
        return loaded


def _mtime(module: ModuleType) -> int | None:
    origin = getattr(module, "__file__", None)
    try:
        return Path(origin).stat().st_mtime_ns if origin else None
    except OSError:
        return None


def cache_path(state_dir: Path | None = None) -> Path:
    return (state_dir or conf.state_dir()) / "catalog.json"


def cache_key(state_dir: Path | None = None) -> tuple[str, int]:
    """Changes whenever a process has seen the generators change (and rewritten the cache).

    Long-lived processes (a web process's hook, ORM capture) key what they derive from
    the catalog on it, and so read the generators again only when they changed.
    """
    path = cache_path(state_dir)
    try:
        return (str(path), path.stat().st_mtime_ns)
    except OSError:
        return (str(path), 0)


_latest: dict[tuple[str, int], Catalog] = {}
_latest_guard = threading.Lock()


def cached() -> Catalog:
    """The catalog, loaded again only when a build has seen the generators change.

    For long-lived processes that only read it (the hook, ORM capture in a web process,
    the actions of a build after its task graph has loaded it): keyed by
    :func:`cache_key`, so it costs one ``stat`` while nothing changed.
    """
    key = cache_key()
    with _latest_guard:
        found = _latest.get(key)
    return found if found is not None else load()


def _remember(cat: Catalog) -> None:
    key = cache_key()
    with _latest_guard:
        _latest.clear()
        _latest[key] = cat


def load(state_dir: Path | None = None) -> Catalog:
    """Find every generator and what it declares (from the cache where it is fresh)."""
    cache_file = cache_path(state_dir)
    try:
        cache = json.loads(cache_file.read_text())
        if not isinstance(cache, dict) or cache.get("version") != CACHE_VERSION:
            cache = {}
        elif not isinstance(cache.get("modules"), dict):
            raise ValueError("no modules")
    except FileNotFoundError:
        cache = {}
    except (OSError, ValueError) as exc:
        logger.warning(
            "generator cache %s is unreadable (%s); reading the generators", cache_file, exc
        )
        cache = {}
    cached_modules = cache.get("modules", {})
    entries: dict[str, Any] = {}
    generators = []
    dirty = not cache
    for name, module, path in locate():
        key = _file_key(path)
        entry = cached_modules.get(module)
        found = _declarations_of(entry, key)
        if found is None:
            entry = _read_declarations(module, key)
            found = tuple(Declaration.from_dict(d) for d in entry["declarations"])
            dirty = True
        if not entry.get("error"):
            entries[module] = entry
        generators.append(
            Generator(
                name=name,
                module=module,
                path=path,
                declarations=found,
                error=entry.get("error", ""),
                title=str(entry.get("title") or name.replace("_", " ").capitalize()),
                permission=str(entry.get("permission", "")),
                max_lag=tuple(entry["max_lag"]) if entry.get("max_lag") else None,  # type: ignore[arg-type]
            )
        )
    if dirty or entries.keys() != cached_modules.keys():
        data = {"version": CACHE_VERSION, "modules": entries}
        try:
            write_if_changed(cache_file, json.dumps(data, indent=1, sort_keys=True) + "\n")
        except OSError as exc:
            logger.warning("cannot cache generator declarations in %s: %s", cache_file, exc)
    cat = Catalog(tuple(generators), tuple(validate(generators)))
    if state_dir is None or state_dir == conf.state_dir():
        _remember(cat)
    return cat


def _declarations_of(entry: Any, key: list[int] | None) -> tuple[Declaration, ...] | None:
    """The declarations of a cache entry for this version of the source, if well formed."""
    try:
        if key is None or entry["key"] != key or entry.get("error"):
            return None
        return tuple(Declaration.from_dict(d) for d in entry["declarations"])
    except (TypeError, KeyError, AttributeError):
        return None


def _file_key(path: Path | None) -> list[int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _read_declarations(module: str, key: list[int] | None) -> dict[str, Any]:
    try:
        loaded = import_generator(module)
    except GeneratorError as exc:
        return {"key": key, "declarations": [], "error": str(exc)}
    try:
        permission = stored_permission(getattr(loaded, "PERMISSION", None))
    except TypeError as exc:
        return {"key": key, "declarations": [], "error": f"{module}.PERMISSION: {exc}"}
    try:
        max_lag = conf.lag_limit(getattr(loaded, "MAX_LAG", None), f"{module}.MAX_LAG")
    except ValueError as exc:
        return {"key": key, "declarations": [], "error": str(exc)}
    return {
        "key": key,
        "declarations": [d.as_dict() for d, _ in declarations(loaded)],
        "title": str(getattr(loaded, "TITLE", "") or ""),
        "permission": permission,
        "max_lag": list(max_lag) if max_lag else None,
    }


def function(generator: Generator, name: str) -> Any:
    """The function of ``generator`` that makes chart or number ``name``."""
    module = import_generator(generator.module)
    for declaration, func in declarations(module):
        if declaration.name == name:
            return func
    raise GeneratorError(
        f"generator {generator.name!r} ({generator.module}) no longer declares {name!r}"
    )


def validate(generators: list[Generator]) -> list[Problem]:
    """Configuration mistakes in the generators and their declarations."""
    problems = []
    names: dict[str, str] = {}
    folded: dict[str, str] = {}
    known: set[str] = set()
    for generator in generators:
        g = generator.name
        if generator.error:
            problems.append(
                Problem(
                    "chartbuild.E001",
                    generator.error,
                    "Fix the error in the module, or remove it from CHARTBUILD_GENERATORS.",
                    g,
                )
            )
            continue
        if g in names:
            problems.append(
                Problem(
                    "chartbuild.E005",
                    f"generator name {g!r} is used by both {names[g]} and {generator.module}",
                    "Rename one of the modules: a generator is named after its app label "
                    "or the last part of its dotted path.",
                    g,
                )
            )
            continue
        names[g] = generator.module
        if g.lower() in folded:
            problems.append(
                Problem(
                    "chartbuild.E014",
                    f"generator name {g!r} differs only by case from {folded[g.lower()]!r}: "
                    "their outputs collide where file names ignore case",
                    "Rename one of the modules.",
                    g,
                )
            )
            continue
        folded[g.lower()] = g
        if g.lower() in RESERVED_GENERATORS:
            problems.append(
                Problem(
                    "chartbuild.E014",
                    f"generator name {g!r} collides with {RESERVED_GENERATORS[g.lower()]}",
                    "Rename the module, or list it in CHARTBUILD_GENERATORS under another name.",
                    g,
                )
            )
            continue
        if not SAFE_NAME.fullmatch(g):
            problems.append(
                Problem(
                    "chartbuild.E002",
                    f"generator name {g!r} is not a safe file name",
                    "Use letters, digits, '_' and '-' only.",
                    g,
                )
            )
        seen: set[str] = set()
        cased: dict[str, str] = {}
        for d in generator.declarations:
            where = f"{d.kind} {g}.{d.name}"
            if d.name.lower() in RESERVED_NAMES:
                problems.append(
                    Problem(
                        "chartbuild.E014",
                        f"{where}: name {d.name!r} collides with an output of the site "
                        f"(reserved: {', '.join(RESERVED_NAMES)})",
                        "Give it another name (name=... in the decorator).",
                        g,
                        d.name,
                    )
                )
            elif d.name not in seen and cased.get(d.name.lower(), d.name) != d.name:
                problems.append(
                    Problem(
                        "chartbuild.E014",
                        f"{where}: name {d.name!r} differs only by case from "
                        f"{cased[d.name.lower()]!r}: their files collide where file names "
                        "ignore case",
                        "Give one of them another name (name=... in the decorator).",
                        g,
                        d.name,
                    )
                )
            cased.setdefault(d.name.lower(), d.name)
            if not SAFE_NAME.fullmatch(d.name):
                problems.append(
                    Problem(
                        "chartbuild.E002",
                        f"{where}: name {d.name!r} is not a safe file name",
                        "Use letters, digits, '_' and '-' only (name=... in the decorator).",
                        g,
                        d.name,
                    )
                )
            if d.name in seen:
                problems.append(
                    Problem(
                        "chartbuild.E003",
                        f"{where} is declared twice in {generator.module}",
                        "Give one of them another name (name=... in the decorator).",
                        g,
                        d.name,
                    )
                )
            seen.add(d.name)
            if not d.models:
                problems.append(
                    Problem(
                        "chartbuild.E006",
                        f"{where} declares no models",
                        "List every model it reads in models=[...], or it is never rebuilt.",
                        g,
                        d.name,
                    )
                )
            for model in d.models:
                if model not in known:
                    try:
                        resolve_model(model)
                        known.add(model)
                    except LookupError:
                        pass
                if model not in known:
                    problems.append(
                        Problem(
                            "chartbuild.E004",
                            f"{where} reads unknown model {model!r}",
                            "Use 'app_label.ModelName' of an installed app, or the model class.",
                            g,
                            d.name,
                        )
                    )
            for model, fields in d.columns:
                wrong = _wrong_columns(model, fields, d.models)
                if wrong:
                    problems.append(
                        Problem(
                            "chartbuild.E023",
                            f"{where}: columns= {wrong}",
                            "Name the fields it reads of models it lists in models=[...].",
                            g,
                            d.name,
                        )
                    )
    return problems


def _wrong_columns(model: str, fields: Iterable[str], models: Iterable[str]) -> str:
    """What is wrong with ``columns={model: fields}`` of a chart reading ``models``."""
    if model not in models:
        return f"names {model}, which is not in its models"
    try:
        meta = resolve_model(model)._meta
    except LookupError:
        return f"names unknown model {model!r}"
    own = {f.name for f in meta.concrete_fields} | {f.column for f in meta.concrete_fields}
    unknown = sorted(set(fields) - own)
    return f"{model} has no field {', '.join(map(repr, unknown))}" if unknown else ""
