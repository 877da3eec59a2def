"""``{% load chartbuild %}``: charts and numbers in any template of the project.

- ``{% chartbuild_assets %}`` once per page (in ``<head>``): the style sheet and scripts.
- ``{% chart "shop.revenue_per_month" %}``: the chart, drawn interactively (its SVG
  without JavaScript), kept live while the page is open.
- ``{% number "shop.orders_count" %}``: the number, its unit and label, kept live.

Both render nothing when the user in the template's context (``request.user``, else
``user``) may not see the chart or number, when it does not exist, or when no user is
known. They need ``path("charts/", include("chartbuild.site.urls"))`` in the URLconf.
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from chartbuild import conf
from chartbuild.publish import pages
from chartbuild.site import items as site

register = template.Library()


@register.simple_tag
def chartbuild_assets() -> SafeString:
    """The style sheet and the scripts of chartbuild's charts (once per page)."""
    return format_html(
        '<link rel="stylesheet" href="{}">\n<script src="{}" defer></script>\n'
        '<script src="{}" defer></script>',
        reverse("chartbuild:asset", args=["chartbuild.css"]),
        reverse("chartbuild:asset", args=["vega.js"]),
        reverse("chartbuild:asset", args=["chartbuild.js"]),
    )


@register.simple_tag(takes_context=True)
def chart(context: template.Context, task: str) -> SafeString:
    """The chart ``"<generator>.<name>"`` if the user may see it, else nothing."""
    entry = _visible(context, task, "chart")
    return item_chart(entry) if entry is not None else mark_safe("")


@register.simple_tag(takes_context=True)
def number(context: template.Context, task: str) -> SafeString:
    """The number ``"<generator>.<name>"`` if the user may see it, else nothing."""
    entry = _visible(context, task, "number")
    return item_number(entry) if entry is not None else mark_safe("")


@register.simple_tag
def item_chart(entry: site.Item, caption: bool = True) -> SafeString:
    """A chart of the site's pages (the caller checked the permission).

    ``caption=False`` on a page whose heading is the chart's title: its title then shows
    once (the script also leaves out the spec's own title when it says the same).
    """
    context = {**_context(entry), "caption": caption}
    return mark_safe(render_to_string("chartbuild/site/chart.html", context))


@register.simple_tag
def item_number(entry: site.Item, caption: bool = True) -> SafeString:
    """A number of the site's pages (the caller checked the permission).

    On a dashboard (``caption=True``) its label links to its page and a figure too wide
    for its card is shortened (1.88M); on its own page it shows whole.
    """
    context = {**_context(entry), "caption": caption, "whole": not caption}
    data = entry.number() or {}
    value = data.get("value")
    context.update(
        # a plain string, never localised: the script reads it as a JavaScript number
        raw_value="" if value is None else json.dumps(value),
        display=pages.display(value) if data else "n/a",
        unit=data.get("unit", entry.declaration.unit),
        trend=pages.trend(data),
    )
    return mark_safe(render_to_string("chartbuild/site/number.html", context))


def _visible(context: template.Context, task: str, kind: str) -> site.Item | None:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    generator_name, _, name = str(task).partition(".")
    gen = site.generator(generator_name)
    entry = site.item(gen, name) if gen is not None else None
    if user is None or entry is None or entry.kind != kind or not site.may_see(user, entry):
        return None
    return entry


def _context(entry: site.Item) -> dict[str, Any]:
    generator, name = entry.generator.name, entry.name

    def output(extension: str) -> str:
        return reverse("chartbuild:output", args=[generator, name, extension])

    urls = {
        "page": reverse("chartbuild:item", args=[generator, name]),
        "state": reverse("chartbuild:state", args=[generator]),
    }
    if entry.kind == "chart":
        urls.update(spec=output("vl.json"), svg=output("svg"), png=output("png"), csv=output("csv"))
    return {
        "item": entry,
        "urls": urls,
        "version": entry.version(),
        "built": entry.built,
        "built_at": entry.record.built_at,
        "stale": bool(entry.record.error),
        "behind_since": entry.behind_since() if entry.record.built_at else None,
        "interval_ms": str(max(250, round(conf.live_interval() * 1000))),
        "data_sets": entry.record.data_sets,
    }
