"""Which database tables a model's rows live in, and which model a table belongs to.

Change capture works on tables (a trigger fires for a table, a query names tables),
while charts declare models. This module maps one onto the other:

- a model is *written* through its concrete table and the tables of its concrete parents
  (multi-table inheritance): a proxy model shares its concrete model's table;
- a model is *read* through those tables and the automatic through tables of its
  many-to-many relations, in both directions (``User.groups`` makes ``auth_user_groups``
  part of both ``auth.User`` and ``auth.Group``): adding a user to a group changes what a
  chart of users per group shows.

Labels are lower case ``app_label.modelname``, as everywhere in chartbuild.
"""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps

from chartbuild.declare.registry import model_label, resolve_model


def written_by(model: Any) -> frozenset[str]:
    """The tables a ``save()`` of ``model`` (a class or a label) writes."""
    meta = _meta(model)
    return frozenset([meta.db_table, *(p._meta.db_table for p in meta.get_parent_list())])


def read_by(model: Any) -> frozenset[str]:
    """The tables whose rows a query of ``model`` (a class or a label) can see."""
    meta = _meta(model)
    through = {
        field.remote_field.through._meta
        for field in meta.many_to_many
        if field.remote_field.through is not None
    } | {
        rel.through._meta
        for rel in meta.related_objects
        if rel.many_to_many and getattr(rel, "through", None) is not None
    }
    return written_by(model) | {t.db_table for t in through if t.auto_created}


def of_models(models: Any) -> dict[str, frozenset[str]]:
    """``{label: tables it reads}`` for each of ``models`` that is installed."""
    found = {}
    for model in models:
        try:
            found[model_label(model)] = read_by(model)
        except LookupError:
            continue
    return found


def readers(models: Any) -> dict[str, frozenset[str]]:
    """``{table: labels of those of models that read it}``: :func:`of_models` inverted."""
    inverse: dict[str, set[str]] = {}
    for label, tables in of_models(models).items():
        for table in tables:
            inverse.setdefault(table, set()).add(label)
    return {table: frozenset(labels) for table, labels in inverse.items()}


@functools.cache
def owners() -> dict[str, str]:
    """``{table: label}`` of every installed model's own table (automatic through tables too).

    A table shared by several models (proxies, unmanaged models over one table) is
    named after its concrete, managed model.
    """
    found: dict[str, str] = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy:
            continue
        if meta.db_table not in found or meta.managed:
            found[meta.db_table] = model_label(model)
    return found


def clear_cache() -> None:
    owners.cache_clear()


def _meta(model: Any) -> Any:
    cls = resolve_model(model) if isinstance(model, str) else model
    return cls._meta.concrete_model._meta
