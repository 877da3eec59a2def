"""System checks: configuration mistakes reported by ``manage.py check`` with ids and hints.

| id | problem |
| --- | --- |
| chartbuild.E001 | a generator module cannot be imported |
| chartbuild.E002 | a generator, chart or number name is not a safe file name |
| chartbuild.E003 | two charts or numbers of one generator share a name |
| chartbuild.E004 | a chart or number reads a model that does not exist |
| chartbuild.E005 | two generators share a name |
| chartbuild.E006 | a chart or number declares no models |
| chartbuild.E007 | ``CHARTBUILD_GENERATORS`` is not a list of dotted module paths |
| chartbuild.E008 | ``mqueue`` is not in ``INSTALLED_APPS`` |
| chartbuild.E009 | ``CHARTBUILD_HOOK`` is neither ``"signal"`` nor ``"build"`` |
| chartbuild.W001 | a model a chart reads is not tracked by ``MQUEUE_AUTOREGISTER`` |
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from chartbuild import catalog
from chartbuild.registry import model_label, resolve_model

TRACKED_OPERATIONS = {"c", "u", "d"}
HOOK_MODES = ("signal", "build")


@register(Tags.compatibility)
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    generators = getattr(settings, "CHARTBUILD_GENERATORS", [])
    if not isinstance(generators, list | tuple) or not all(isinstance(g, str) for g in generators):
        return [
            Error(
                f"CHARTBUILD_GENERATORS must be a list of dotted module paths, not {generators!r}",
                hint='For example CHARTBUILD_GENERATORS = ["myproject.charts"].',
                id="chartbuild.E007",
            )
        ]
    hook = getattr(settings, "CHARTBUILD_HOOK", "signal")
    if hook not in HOOK_MODES:
        return [
            Error(
                f"CHARTBUILD_HOOK must be one of {', '.join(map(repr, HOOK_MODES))}, not {hook!r}",
                hint='"signal" wakes a running `doit auto`; "build" builds in the saving process.',
                id="chartbuild.E009",
            )
        ]
    if not apps.is_installed("mqueue"):
        return [
            Error(
                "chartbuild needs django-mqueue: 'mqueue' is not in INSTALLED_APPS",
                hint="Add 'mqueue' to INSTALLED_APPS and run migrate.",
                id="chartbuild.E008",
            )
        ]
    cat = catalog.load()
    messages: list[CheckMessage] = [
        Error(p.msg, hint=p.hint, obj=p.generator or None, id=p.id) for p in cat.problems
    ]
    tracked = _tracked_models()
    readers: dict[str, list[str]] = {}
    for generator in cat.generators:
        for declaration in generator.declarations:
            for model in declaration.models:
                readers.setdefault(model, []).append(f"{generator.name}.{declaration.name}")
    for model in cat.models():
        missing = TRACKED_OPERATIONS - tracked.get(model, set())
        if missing:
            messages.append(
                Warning(
                    f"{model} is read by {', '.join(readers[model])} but MQUEUE_AUTOREGISTER "
                    f"does not track its {'/'.join(sorted(missing))} events: those changes "
                    "will not rebuild the charts",
                    hint=f'Add ("{_dotted(model)}", ["c", "u", "d"]) to MQUEUE_AUTOREGISTER.',
                    id="chartbuild.W001",
                )
            )
    return messages


def _tracked_models() -> dict[str, set[str]]:
    tracked: dict[str, set[str]] = {}
    for path, operations in getattr(settings, "MQUEUE_AUTOREGISTER", []):
        module, _, name = str(path).rpartition(".")
        app_label = _app_label(module)
        try:
            label = model_label(apps.get_model(app_label, name)) if app_label else path
        except LookupError:
            continue
        tracked.setdefault(label, set()).update(operations)
    return tracked


def _app_label(module: str) -> str | None:
    matches = [
        app_config
        for app_config in apps.get_app_configs()
        if module == app_config.name or module.startswith(app_config.name + ".")
    ]
    return max(matches, key=lambda a: len(a.name)).label if matches else None


def _dotted(model: str) -> str:
    cls = resolve_model(model)
    return f"{cls.__module__}.{cls.__name__}"
