"""The django-mqueue hook: ``MQUEUE_HOOKS = {"chartbuild": {"path": "chartbuild.live.hooks"}}``.

mqueue calls :func:`save` for every event it records, synchronously, before the
transaction commits, and lets exceptions escape into the caller's ``save()``. So
this hook:

- ignores events of models no chart reads;
- acts only after commit (``transaction.on_commit``): a rolled-back change does nothing;
- registers one callback per transaction, however many events it holds;
- never raises: failures are logged on the ``chartbuild.live.hooks`` logger.

After commit it either *signals* (``CHARTBUILD_HOOK = "signal"``, the default): it
sends one datagram that wakes a running ``doit auto`` at once; or *builds*
(``"build"``): it builds the generators that read the changed models in this process,
under the build lock, for a small site without a watcher.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connections, transaction

from chartbuild import conf
from chartbuild.live import wakeup

logger = logging.getLogger(__name__)

#: Attribute of a database connection holding the callback of its open transaction.
PENDING = "_chartbuild_on_commit"


def save(event: Any, config: Any = None) -> None:
    """mqueue's hook entry point; raises nothing but the user's own Ctrl-C."""
    try:
        label = _watched_label(event)
        if label is not None:
            _after_commit(label, event._state.db or "default")
    except KeyboardInterrupt:
        raise  # the user stops the program: that is no failure of the hook's
    except BaseException:  # SystemExit and all: nothing escapes into the caller's save()
        logger.exception("chartbuild hook failed for event %s; no rebuild was requested", event.pk)


def signal() -> None:
    """Wake a running ``doit auto`` (see :mod:`chartbuild.live.wakeup`); no-op without one."""
    wakeup.send(conf.state_dir())


#: ``(database, content type id)`` -> ``app_label.model``, filled once per process.
_labels: dict[tuple[str, int], str] = {}


def _watched_label(event: Any) -> str | None:
    if event.content_type_id is None:
        return None
    using = event._state.db or "default"
    key = (using, event.content_type_id)
    if key not in _labels:
        from django.contrib.contenttypes.models import ContentType

        # In a savepoint: should the lookup fail, the caller's transaction stays usable.
        with transaction.atomic(using=using):
            content_type = ContentType.objects.db_manager(using).get_for_id(key[1])
        _labels[key] = f"{content_type.app_label}.{content_type.model}".lower()
    from chartbuild.declare import catalog

    label = _labels[key]
    return label if label in catalog.cached().models() else None


def _after_commit(label: str, using: str) -> None:
    connection = connections[using]
    callback = getattr(connection, PENDING, None)
    if callback is not None and any(item[1] is callback for item in connection.run_on_commit):
        callback.models.add(label)
        return
    callback = _Callback({label})
    setattr(connection, PENDING, callback)
    transaction.on_commit(callback, using=using, robust=True)


class _Callback:
    """Runs once when the transaction that created it commits."""

    def __init__(self, models: set[str]) -> None:
        self.models = models

    def __call__(self) -> None:
        try:
            _act(sorted(self.models))
        except KeyboardInterrupt:
            raise  # the user stops the program: that is no failure of the hook's
        except BaseException:  # SystemExit and all: nothing escapes into the caller's save()
            logger.exception("chartbuild hook could not request a rebuild of %s", self.models)


def _act(models: list[str]) -> None:
    mode = conf.hook_mode()
    if mode == "build":
        _build(models)
    else:
        signal()


def _build(models: list[str]) -> None:
    from chartbuild.build import runner
    from chartbuild.declare import catalog

    generators = catalog.load().generators_reading(models)
    if not generators:
        return
    result = runner.build([f"gen:{g}" for g in generators])
    if not result.ok:
        logger.error("chartbuild: %s\n%s", result.summary(), result.failure_report())
    else:
        logger.info("chartbuild: %s", result.summary())
