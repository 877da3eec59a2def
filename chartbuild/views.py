"""The charts in the Django site: index, dashboards, chart pages, files, live state.

``path("charts/", include("chartbuild.urls"))`` routes them. Every view checks who may
see what (:mod:`chartbuild.permissions`): anonymous visitors are sent to the login page,
signed-in users without permission get 403. Files are read from the build outputs, only
by the names the catalog declares (nothing else of the output directory, let alone
outside it, can be reached); they carry an ``ETag`` and ``Last-Modified`` and answer
conditional requests with 304, or are handed to the web server with
``CHARTBUILD_SENDFILE``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
)
from django.shortcuts import render
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date, quote_etag

from chartbuild import assets, conf, outputs, site

CONTENT_TYPES = {
    "vl.json": "application/json",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "csv": "text/csv; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}


class _SignIn(Exception):
    """An anonymous visitor asked for something that needs a user."""


def _deny(request: HttpRequest) -> None:
    if not request.user.is_authenticated:
        raise _SignIn
    raise PermissionDenied


def _guarded(view: Any) -> Any:
    """Send anonymous visitors that need a user to the login page."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response: HttpResponseBase = view(request, *args, **kwargs)
        except _SignIn:
            return redirect_to_login(request.get_full_path())
        return response

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _generator(name: str) -> Any:
    found = site.generator(name)
    if found is None:
        raise Http404(f"no generator {name!r}")
    return found


def _item(request: HttpRequest, generator: str, name: str) -> site.Item:
    gen = _generator(generator)
    entry = site.item(gen, name)
    if entry is None:
        raise Http404(f"generator {generator!r} has no chart or number {name!r}")
    if not site.may_see(request.user, entry):
        _deny(request)
    return entry


@_guarded
def index(request: HttpRequest) -> HttpResponse:
    """The generators the user may see: title, number of charts, last build."""
    found = site.generators(request.user)
    if not found and not request.user.is_authenticated:
        _deny(request)
    rows = [
        {"generator": gen, "count": len(visible), "built_at": site.last_build(visible)}
        for gen, visible in found
    ]
    return render(request, "chartbuild/site/index.html", {"rows": rows})


@_guarded
def dashboard(request: HttpRequest, generator: str) -> HttpResponse:
    """The charts and numbers of one generator that the user may see."""
    gen = _generator(generator)
    visible = site.items(request.user, gen)
    if not visible:
        _deny(request)
    context = {
        "generator": gen,
        "numbers": [entry for entry in visible if entry.kind == "number"],
        "charts": [entry for entry in visible if entry.kind == "chart"],
        "built_at": site.last_build(visible),
        "live_interval": conf.live_interval(),
    }
    return render(request, "chartbuild/site/dashboard.html", context)


@_guarded
def item(request: HttpRequest, generator: str, name: str) -> HttpResponse:
    """One chart or number on a page of its own, with its data as a table."""
    entry = _item(request, generator, name)
    if not entry.built:
        return render(request, "chartbuild/site/not_built.html", {"item": entry}, status=404)
    context: dict[str, Any] = {
        "generator": entry.generator,
        "item": entry,
        "live_interval": conf.live_interval(),
    }
    if entry.kind == "chart":
        path = entry.file("vl.json")
        try:
            context["tables"] = data_tables(json.loads(path.read_text()) if path else {})
        except (OSError, ValueError):
            context["tables"] = []
    return render(request, "chartbuild/site/item.html", context)


@_guarded
def output(request: HttpRequest, generator: str, name: str, extension: str) -> HttpResponseBase:
    """A file of a chart (``.vl.json``, ``.svg``, ``.png``, ``.csv``) or number (``.json``)."""
    entry = _item(request, generator, name)
    path = entry.file(extension)
    if path is None:
        if extension == entry.main_extension:
            raise Http404(f"{entry.task} has not been built yet: run doit")
        raise Http404(f"{entry.kind} {entry.task} has no .{extension} file")
    return serve(request, path, CONTENT_TYPES[extension.rsplit(".", 1)[-1]])


def asset(request: HttpRequest, filename: str) -> HttpResponseBase:
    """The pages' scripts and style sheet (public: they hold no data)."""
    if filename in outputs.PACKAGE_ASSETS:
        path = assets.PACKAGE_STATIC / filename
    elif filename == "vega.js":
        path = conf.output_dir() / outputs.STATIC / filename
        if not path.is_file():
            raise Http404("vega.js has not been built yet: run doit")
    else:
        raise Http404(f"no asset {filename!r}")
    return serve(request, path, CONTENT_TYPES[filename.rsplit(".", 1)[-1]], public=True)


@_guarded
def state(request: HttpRequest, generator: str) -> HttpResponseBase:
    """What a live page of a generator polls: each visible item's version (304 if unchanged)."""
    gen = _generator(generator)
    if not site.items(request.user, gen):
        _deny(request)
    return _json(request, {"items": site.state(request.user, gen)})


@_guarded
def manifest(request: HttpRequest) -> HttpResponseBase:
    """``manifest.json``, listing only what the user may see."""
    entries = site.manifest(request.user)
    if not entries and not request.user.is_authenticated:
        _deny(request)
    return _json(request, {"entries": entries})


def _json(request: HttpRequest, data: dict[str, Any]) -> HttpResponseBase:
    body = json.dumps(data, sort_keys=True).encode()
    etag = quote_etag(hashlib.sha256(body).hexdigest()[:20])
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response


def serve(
    request: HttpRequest, path: Path, content_type: str, *, public: bool = False
) -> HttpResponseBase:
    """``path`` with validators, 304 when the client has it, or handed to the web server."""
    stat = path.stat()
    etag = quote_etag(f"{stat.st_mtime_ns:x}-{stat.st_size:x}")
    last_modified = int(stat.st_mtime)
    response = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if response is None:
        mode, out = conf.sendfile(), conf.output_dir()
        if mode == "X-Sendfile":
            response = HttpResponse(content_type=content_type)
            response[mode] = str(path)
        elif mode == "X-Accel-Redirect" and path.is_relative_to(out):
            response = HttpResponse(content_type=content_type)
            response[mode] = conf.sendfile_url() + path.relative_to(out).as_posix()
        else:
            response = FileResponse(path.open("rb"), content_type=content_type)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    if public:
        patch_cache_control(response, public=True, no_cache=True)
    else:
        patch_cache_control(response, private=True, no_cache=True)
    return response


def data_tables(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline data sets of a spec as tables: ``{"columns": [...], "rows": [[...]]}``."""
    found = []
    for rows in outputs.data_sets(spec):
        columns = outputs.columns(rows)
        found.append(
            {"columns": columns, "rows": [[row.get(c, "") for c in columns] for row in rows]}
        )
    return found
