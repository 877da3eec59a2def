"""The pages' shared scripts and style sheet, written once per output directory.

``vega.js`` (Vega, Vega-Lite and Vega-Embed, from vl-convert) takes vl-convert about a
second to produce, and depends only on vl-convert's version. It is made once per version
into a cache directory outside the output directory (``CHARTBUILD_CACHE_DIR``, default the
user's cache, ``$XDG_CACHE_HOME/chartbuild``) and copied from there: a cold build of a
new project, or one after ``doit clean``, does not pay for it again.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path

from chartbuild import conf
from chartbuild.files import write_if_changed
from chartbuild.publish import outputs

logger = logging.getLogger(__name__)

PACKAGE_STATIC = Path(__file__).resolve().parent.parent / "static" / "chartbuild"


def vega_js() -> bytes:
    """vl-convert's JavaScript bundle, from the cache (made and cached when missing)."""
    cached = conf.cache_dir() / f"vl-convert-{version('vl-convert-python')}" / "vega.js"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    import vl_convert

    bundle = vl_convert.javascript_bundle().encode()  # type: ignore[call-arg]
    try:
        write_if_changed(cached, bundle)
    except OSError as exc:  # a read-only home: made again next time, nothing worse
        logger.info("cannot cache vega.js in %s: %s", cached.parent, exc)
    return bundle


def write() -> None:
    """Write the shared scripts and style sheet into the output directory."""
    static = conf.output_dir() / outputs.STATIC
    write_if_changed(static / "vega.js", vega_js())
    for name in outputs.PACKAGE_ASSETS:
        write_if_changed(static / name, (PACKAGE_STATIC / name).read_bytes())


def sources() -> list[Path]:
    """The package files the assets are copied from (the task's ``file_dep``)."""
    return [PACKAGE_STATIC / name for name in outputs.PACKAGE_ASSETS]
