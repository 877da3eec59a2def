"""mqueue's signal receivers, guarded so that a ``save()`` never fails because of them.

django-mqueue records an event from ``post_save`` and ``post_delete`` receivers, after
the row is written, and lets any error escape into the caller's ``save()``:

- a model with no admin change page (not registered, or no admin routed) raises
  ``NoReverseMatch`` while mqueue computes the event's admin URL;
- a primary key that is not an integer fitting mqueue's ``obj_pk`` column (a UUID, a
  string, a big integer) fails the event's insert, and inside a transaction that insert's
  error breaks the caller's transaction.

chartbuild replaces mqueue's receivers of the models in ``MQUEUE_AUTOREGISTER`` by
guarded ones (``ChartbuildConfig.ready()``, which must run after mqueue's: list
``"chartbuild"`` after ``"mqueue"``; system check ``chartbuild.E012``). An event whose
primary key mqueue cannot store is not recorded; any other error of mqueue's receiver
is logged once per model and cause. Database errors still propagate: the caller's
transaction is in trouble and must know. The change itself reaches the charts through
the capture triggers either way, and ``manage.py check`` says what to fix
(``chartbuild.W003``).

A ``save(update_fields=...)`` of columns no chart reads (see ``columns=`` of
:func:`chartbuild.chart`) records no event: a sign-in writes ``last_login`` only.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)

#: mqueue's ``obj_pk`` is an ``IntegerField``.
INTEGER = range(-(2**31), 2**31)

#: ``(model label, cause)`` already logged by this process.
_logged: set[tuple[str, str]] = set()


def storable(instance: Any) -> bool:
    """Whether mqueue can store the primary key of ``instance`` in its ``obj_pk``."""
    pk = instance.pk
    return isinstance(pk, int) and not isinstance(pk, bool) and pk in INTEGER


def guarded(receiver: Callable[..., Any]) -> Callable[..., Any]:
    """``receiver``, never raising anything but a database error into ``save()``."""

    @functools.wraps(receiver)
    def guard(sender: Any, instance: Any, **kwargs: Any) -> None:
        if not _concerns_a_chart(instance, kwargs.get("update_fields")):
            return  # a sign-in's save(update_fields=["last_login"]) that no chart reads
        if not storable(instance):
            _log_once(instance, "its primary key is not an integer mqueue can store")
            return
        try:
            receiver(sender, instance=instance, **kwargs)
        except DatabaseError:
            raise
        except Exception as exc:
            _log_once(instance, f"{type(exc).__name__}: {exc}")

    guard.chartbuild_guards = receiver  # type: ignore[attr-defined]
    return guard


def _concerns_a_chart(instance: Any, update_fields: Any) -> bool:
    """Whether a ``save(update_fields=...)`` writes a column some chart reads (a save of
    every field, or a delete, always does)."""
    if not update_fields:
        return True
    from chartbuild.capture import triggers

    meta = instance._meta
    columns = {meta.get_field(name).column for name in update_fields}
    try:
        return triggers.concerns(meta.db_table, columns)
    except Exception:  # the generators cannot be read: an event too many is harmless
        logger.debug("cannot tell which columns charts read", exc_info=True)
        return True


def _log_once(instance: Any, cause: str) -> None:
    key = (instance._meta.label_lower, cause)
    if key not in _logged:
        _logged.add(key)
        logger.warning(
            "mqueue recorded no event for %s: %s. The save() went through and chartbuild's "
            "change capture still sees it; `manage.py check` says how to fix this.",
            instance._meta.label,
            cause,
        )


def install() -> int:
    """Swap mqueue's receivers of every model it tracks for guarded ones; return how many."""
    try:
        from mqueue import signals as mqueue_signals
    except ImportError:
        return 0
    swaps = [
        (post_save, mqueue_signals.mmessage_create),
        (post_save, mqueue_signals.mmessage_update),
        (post_delete, mqueue_signals.mmessage_delete),
    ]
    swapped = 0
    for model, _ in tracked():
        for signal, receiver in swaps:
            if signal.disconnect(receiver, sender=model):
                signal.connect(
                    _guard_of(receiver),
                    sender=model,
                    weak=False,
                    dispatch_uid=f"chartbuild-{receiver.__name__}-{model._meta.label_lower}",
                )
                swapped += 1
    return swapped


@functools.cache
def _guard_of(receiver: Callable[..., Any]) -> Callable[..., Any]:
    return guarded(receiver)


def tracked() -> list[tuple[Any, str]]:
    """``(model, operations)`` of ``MQUEUE_AUTOREGISTER``, resolved as mqueue resolves them.

    Entries that do not name an importable model are left out (mqueue itself fails at
    start-up on those).
    """
    found = []
    for path, operations in getattr(settings, "MQUEUE_AUTOREGISTER", []):
        module, _, name = str(path).rpartition(".")
        try:
            model = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            continue
        if hasattr(model, "_meta"):
            found.append((model, "".join(operations)))
    return found
