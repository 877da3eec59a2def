"""Declaring charts and numbers, and finding the generators that declare them.

A *generator* is a Python module whose functions are decorated with :func:`chart`
or :func:`number`. The decorators only attach a :class:`Declaration` to the
function; nothing is registered globally, so importing a generator twice (or
reloading it) never produces phantom entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, TypeVar

from chartbuild import conf

Kind = Literal["chart", "number"]
F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__chartbuild__"
#: A permission given as a callable is kept on the function under this attribute.
PERMISSION_ATTRIBUTE = "__chartbuild_permission__"
#: What a declaration (and the catalog) keeps for a permission given as a callable.
CALLABLE = "<callable>"

#: Who may see a chart or number: a Django permission string (``"shop.view_order"``),
#: one of the names ``"staff"``, ``"signed_in"`` and ``"anyone"``, or a callable taking
#: the user (see :mod:`chartbuild.site.permissions`).
Permission = str | Callable[[Any], bool]


@dataclass(frozen=True)
class Declaration:
    """What a decorated function says about the chart or number it makes."""

    name: str
    kind: Kind
    title: str
    models: tuple[str, ...]
    label: str = ""
    unit: str = ""
    function: str = field(default="", compare=False)
    #: The declared permission: a string, :data:`CALLABLE`, or "" (the generator's default).
    permission: str = ""
    #: The rollups it reads (their base models are in ``models``).
    rollups: tuple[str, ...] = ()
    #: A number's colour when it goes up: good (True), bad (False) or neither (None).
    higher_is_better: bool | None = True
    #: Its freshness limit ``(warn, error)`` in seconds; None: its generator's, or the default.
    max_lag: tuple[float, float] | None = None
    #: The fields it reads of some of its models, ``((model, (field, ...)), ...)``: an
    #: ``UPDATE`` of none of them does not rebuild it. A model not named here: all fields.
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "title": self.title,
            "models": list(self.models),
            "label": self.label,
            "unit": self.unit,
            "function": self.function,
            "permission": self.permission,
            "rollups": list(self.rollups),
            "higher_is_better": self.higher_is_better,
            "max_lag": list(self.max_lag) if self.max_lag else None,
            "columns": {model: list(fields) for model, fields in self.columns},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Declaration:
        return cls(
            name=data["name"],
            kind=data["kind"],
            title=data["title"],
            models=tuple(data["models"]),
            label=data.get("label", ""),
            unit=data.get("unit", ""),
            function=data.get("function", ""),
            permission=data.get("permission", ""),
            rollups=tuple(data.get("rollups", ())),
            higher_is_better=data.get("higher_is_better", True),
            max_lag=tuple(data["max_lag"]) if data.get("max_lag") else None,  # type: ignore[arg-type]
            columns=tuple(
                (model, tuple(fields)) for model, fields in (data.get("columns") or {}).items()
            ),
        )


def model_label(model: Any) -> str:
    """``"app_label.modelname"`` in lower case, for a model class or a label string (for a
    rollup, its base model's: a chart that reads it depends on the writes to that)."""
    base = getattr(model, "base_label", None)
    if isinstance(base, str):
        return base
    meta = getattr(model, "_meta", None)
    if meta is not None:
        return str(meta.label_lower).lower()  # label_lower keeps the app label's case
    if not isinstance(model, str):
        raise TypeError(f"expected a model class or an 'app_label.Model' string, got {model!r}")
    return model.lower()


def _declare(
    func: F,
    *,
    kind: Kind,
    models: Iterable[Any],
    name: str | None,
    title: str | None,
    label: str = "",
    unit: str = "",
    permission: Permission | None = None,
    higher_is_better: bool | None = True,
    max_lag: Any = None,
    columns: Mapping[Any, Iterable[str]] | None = None,
) -> F:
    models = list(models)
    chart_name = name or func.__name__
    where = f"{kind} {func.__module__}.{chart_name}: max_lag"
    doc_line = (func.__doc__ or "").strip().splitlines()[0:1]
    default_title = doc_line[0] if doc_line else chart_name.replace("_", " ").capitalize()
    declaration = Declaration(
        name=chart_name,
        kind=kind,
        title=title or label or default_title,
        models=tuple(model_label(m) for m in models),
        label=label or title or default_title,
        unit=unit,
        function=func.__name__,
        permission=stored_permission(permission),
        rollups=tuple(m.name for m in models if isinstance(getattr(m, "base_label", None), str)),
        higher_is_better=higher_is_better,
        max_lag=conf.lag_limit(max_lag, where),
        columns=_columns(columns),
    )
    setattr(func, ATTRIBUTE, declaration)
    if callable(permission):
        setattr(func, PERMISSION_ATTRIBUTE, permission)
    return func


def _columns(
    columns: Mapping[Any, Iterable[str]] | None,
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if columns is None:
        return ()
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must map models to the fields read, not {columns!r}")
    found = []
    for model, fields in columns.items():
        if isinstance(fields, str):
            raise TypeError(f"columns of {model!r} must be a list of field names, not {fields!r}")
        found.append((model_label(model), tuple(sorted(set(fields)))))
    return tuple(sorted(found))


def stored_permission(permission: Permission | None) -> str:
    """How a declaration keeps ``permission``: the string, :data:`CALLABLE`, or ""."""
    if permission is None:
        return ""
    if isinstance(permission, str):
        return permission
    if callable(permission):
        return CALLABLE
    raise TypeError(
        f"permission must be a permission string or a callable of the user, got {permission!r}"
    )


def chart(
    *,
    models: Iterable[Any],
    name: str | None = None,
    title: str | None = None,
    permission: Permission | None = None,
    max_lag: Any = None,
    columns: Mapping[Any, Iterable[str]] | None = None,
) -> Callable[[F], F]:
    """Declare a chart: the function returns an Altair chart or a Vega-Lite dict.

    ``models`` lists every model the chart reads (classes or ``"app_label.Model"``
    strings); the chart is rebuilt when, and only when, one of them changes or the
    generator's source changes. ``name`` defaults to the function's name, ``title``
    to the first line of its docstring. ``permission`` says who may see it on the site
    (default: the generator's ``PERMISSION``, else ``CHARTBUILD_DEFAULT_PERMISSION``).
    ``max_lag`` is how far behind its committed changes it may be (seconds, a
    ``timedelta`` or a ``(warn, error)`` pair; default: the generator's ``MAX_LAG``, else
    ``CHARTBUILD_MAX_LAG``): ``manage.py chartbuild freshness`` and the metrics check it,
    and the site marks it stale when it is over. ``columns`` names, for some of its
    models, the only fields it reads (``{User: ["date_joined"]}``; ``[]``: it only counts
    rows): an ``update()`` or ``save(update_fields=...)`` of none of them does not rebuild
    it (``migrate`` gives the tables' triggers the columns their charts read).
    """

    def decorate(func: F) -> F:
        return _declare(
            func,
            kind="chart",
            models=models,
            name=name,
            title=title,
            permission=permission,
            max_lag=max_lag,
            columns=columns,
        )

    return decorate


def number(
    *,
    models: Iterable[Any],
    label: str | None = None,
    unit: str = "",
    name: str | None = None,
    permission: Permission | None = None,
    higher_is_better: bool | None = True,
    max_lag: Any = None,
    columns: Mapping[Any, Iterable[str]] | None = None,
) -> Callable[[F], F]:
    """Declare a key number: the function returns an int, float or Decimal, or a
    :class:`~chartbuild.declare.trend.Trend` (the value with its previous period's).

    ``higher_is_better`` colours a rise: good (True), bad (False, as for a count of
    errors) or neither (None). ``permission``, ``max_lag`` and ``columns`` as for :func:`chart`.
    """

    def decorate(func: F) -> F:
        return _declare(
            func,
            kind="number",
            models=models,
            name=name,
            title=label,
            label=label or "",
            unit=unit,
            permission=permission,
            higher_is_better=higher_is_better,
            max_lag=max_lag,
            columns=columns,
        )

    return decorate


def declarations(module: ModuleType) -> Iterator[tuple[Declaration, Callable[..., Any]]]:
    """The charts and numbers a generator module declares, in source order."""
    for value in vars(module).values():
        declaration = getattr(value, ATTRIBUTE, None)
        if (
            isinstance(declaration, Declaration)
            and getattr(value, "__module__", None) == module.__name__
        ):
            yield declaration, value


def resolve_model(label: str) -> Any:
    """The model class of a lower-case ``app_label.modelname`` (app labels may have capitals)."""
    from django.apps import apps

    app_label, _, name = label.partition(".")
    for app_config in apps.get_app_configs():
        if app_config.label.lower() == app_label:
            return app_config.get_model(name)
    raise LookupError(f"no installed app with label {app_label!r}")
