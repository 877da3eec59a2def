"""A chart whose title says who builds Altair's table of schema classes in the build's
process: ``chartbuild.build.schemas`` once it keeps the table."""

from altair.utils import schemapi

from chartbuild import chart


@chart(models=["auth.User"])
def table():
    """Who makes Altair's table"""
    return {"mark": "bar", "data": {"values": []}, "title": schemapi._FromDict.__init__.__module__}
