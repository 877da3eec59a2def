"""Outputs in a Django storage, ``STORAGES["chartbuild"]``, for web nodes on other hosts.

Without that storage the views serve the output directory, and nothing here runs. With
it, every build that writes ``manifest.json`` then publishes what the manifest lists:

1. each output file, under a name that carries a digest of its content
   (``shop/revenue_per_month.3f2a9c1d7b20e5a4.svg``): uploaded once, never overwritten;
2. then ``manifest.json``, last, whose entries name their files in the storage
   (``objects``). On a storage with a local path, both are written beside and renamed.

A reader therefore sees each chart's outputs as a set, the set named by the manifest it
read, and never a file half written. Files that a manifest stops naming are deleted by a
later publication, once they have been unnamed for ``CHARTBUILD_STORAGE_GRACE`` seconds,
so a request that read an earlier manifest (or a web process's cached copy of it) still
finds them.

A publication that fails (the storage is unreachable, say) leaves the storage as it was
and the manifest due: the next build publishes everything again. So does a change of the
storage's settings.

The views read what is published there through :mod:`chartbuild.site.stored`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from chartbuild import conf
from chartbuild.exceptions import ChartbuildError
from chartbuild.files import write_if_changed
from chartbuild.publish import outputs

logger = logging.getLogger(__name__)

#: The alias of the storage in ``STORAGES``.
ALIAS = "chartbuild"
#: Files of the ``static`` folder the views serve from the storage.
ASSETS = ("static/vega.js",)


def configured() -> bool:
    """Whether the outputs are published to ``STORAGES["chartbuild"]``."""
    return ALIAS in settings.STORAGES


def get() -> Storage:
    return storages[ALIAS]


def describe() -> str:
    """The storage as its settings name it, for messages."""
    backend = settings.STORAGES.get(ALIAS, {}).get("BACKEND", "?")
    return f'STORAGES["{ALIAS}"] ({backend})'


def signs_urls(store: Storage) -> bool:
    """Whether the storage's URLs carry their own authorisation (the views redirect).

    django-storages' S3 signs them with ``querystring_auth`` (its default), unless it
    serves a ``custom_domain`` without a ``cloudfront_signer``: those URLs are plain.
    """
    if not getattr(store, "querystring_auth", False):
        return False
    return not getattr(store, "custom_domain", None) or bool(
        getattr(store, "cloudfront_signer", None)
    )


def object_name(path: str, content: bytes) -> str:
    """The name in the storage of output ``path`` holding ``content``."""
    folder, _, filename = path.rpartition("/")
    stem, _, extension = filename.partition(".")
    digest = hashlib.sha256(content).hexdigest()[:16]
    return f"{folder}/{stem}.{digest}.{extension}" if folder else f"{stem}.{digest}.{extension}"


# -- publishing (the build) ---------------------------------------------------------------


def _identity() -> str:
    """What a change of the storage's settings changes (a new storage gets everything):
    a digest, for its options may hold credentials."""
    text = json.dumps(settings.STORAGES.get(ALIAS), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _marker() -> Path:
    return conf.state_dir() / "published"


def pending() -> bool:
    """Whether the storage may lack what the output directory holds: a publication
    failed, or the storage's settings changed since the last one."""
    if not configured():
        return False
    try:
        return _marker().read_text() != _identity()
    except OSError:
        return True


def publish(touched: Collection[str] | None, confirm: Callable[[], None]) -> None:
    """Publish the output directory's ``manifest.json`` and the files it lists.

    ``touched``: the generators a build wrote anything of (None: every one); the files of
    the others are named as the stored manifest names them, without reading them again.
    ``confirm`` is called just before the manifest replaces the stored one: it raises if
    this build may no longer publish (it lost the database's build lock, say). Raises
    :class:`ChartbuildError` naming the storage if it cannot be written.
    """
    _marker().unlink(missing_ok=True)
    out = conf.output_dir()
    local = json.loads((out / outputs.manifest()).read_text())
    try:
        store = get()
        previous = read(store)
        known = _names(previous)
        before = {e.get("task"): e for e in previous.get("entries", []) if isinstance(e, dict)}
        for entry in local["entries"]:
            kept = before.get(entry["task"])
            if not entry["outputs"] and kept is not None and kept.get("objects"):
                # a chart that failed before this machine ever built it keeps the
                # published outputs of its last good build
                entry.update({k: kept[k] for k in ("outputs", "objects") if k in kept})
                continue
            if (
                touched is not None
                and entry["generator"] not in touched
                and kept is not None
                and kept.get("outputs") == entry["outputs"]
                and isinstance(kept.get("objects"), dict)
            ):
                entry["objects"] = kept["objects"]
                continue
            entry["objects"] = {
                path: _upload(store, known, path, (out / path).read_bytes())
                for path in entry["outputs"]
            }
        local["assets"] = {
            path: _upload(store, known, path, (out / path).read_bytes())
            for path in ASSETS
            if (out / path).is_file()
        }
        named = _names(local)
        now, grace = time.time(), conf.storage_grace()
        retired = {k: at for k, at in _retired(previous).items() if k not in named}
        expired = {k for k, at in retired.items() if now - at >= grace}
        local["retired"] = {
            **{k: at for k, at in retired.items() if k not in expired},
            **{k: now for k in known - named},
        }
        confirm()  # no other build can have published since this one began
        _replace(store, outputs.manifest(), json.dumps(local, indent=1, sort_keys=True) + "\n")
    except ChartbuildError:
        raise
    except Exception as exc:  # the storage's own errors: botocore's, OSError...
        raise ChartbuildError(
            f"cannot publish the outputs to {describe()}: {exc}. The charts it holds are "
            "unchanged; the next build publishes them once this is fixed."
        ) from exc
    for name in sorted(expired):
        try:
            store.delete(name)
        except Exception as exc:  # left behind, harmless: nothing names it
            logger.warning("cannot delete %s from %s: %s", name, describe(), exc)
    write_if_changed(_marker(), _identity())


def _retired(manifest: dict[str, Any]) -> dict[str, float]:
    """The files a manifest no longer names, and since when (seconds since the epoch)."""
    found = manifest.get("retired")
    if not isinstance(found, dict):
        return {}
    return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}


def _names(manifest: dict[str, Any]) -> set[str]:
    """Every file a manifest names in the storage."""
    found: set[str] = set()
    for entry in manifest.get("entries", []):
        if isinstance(entry, dict) and isinstance(entry.get("objects"), dict):
            found.update(v for v in entry["objects"].values() if isinstance(v, str))
    if isinstance(manifest.get("assets"), dict):
        found.update(v for v in manifest["assets"].values() if isinstance(v, str))
    return found


def _upload(store: Storage, known: set[str], path: str, content: bytes) -> str:
    name = object_name(path, content)
    if name in known:
        return name
    local = local_path(store, name)
    if local is not None:  # written beside, then renamed: never a part under its name
        write_if_changed(local, content)
    elif not store.exists(name):
        saved = store.save(name, ContentFile(content))
        if saved != name:
            raise ChartbuildError(f"{describe()} saved {name} as {saved}")
    return name


def local_path(store: Storage, name: str) -> Path | None:
    """Where ``name`` is on this machine's file system, if the storage keeps it there."""
    try:
        return Path(store.path(name))
    except NotImplementedError:
        return None


def _replace(store: Storage, name: str, text: str) -> None:
    """Write ``name`` over its old content: atomically on a local file system."""
    local = local_path(store, name)
    if local is not None:
        write_if_changed(local, text)
        return
    saved = store.save(name, ContentFile(text.encode()))
    if saved != name:
        with contextlib.suppress(Exception):
            store.delete(saved)
        raise ChartbuildError(
            f"{describe()} saved {name} as {saved}: it keeps existing files instead of "
            "overwriting them. Let it overwrite (django-storages: file_overwrite=True, "
            "its default)."
        )


# -- reading --------------------------------------------------------------------------


def read(store: Storage) -> dict[str, Any]:
    """The stored manifest (empty before the first publication)."""
    if not store.exists(outputs.manifest()):
        return {}
    try:
        with store.open(outputs.manifest(), "rb") as handle:
            data = json.loads(handle.read())
    except FileNotFoundError:
        return {}
    except ValueError:
        logger.warning("%s holds an unreadable manifest.json", describe())
        return {}
    return data if isinstance(data, dict) else {}
