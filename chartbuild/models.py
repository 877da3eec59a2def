"""chartbuild's own tables: the change log that database triggers write to, and the rest.

Every statement (PostgreSQL) or row (SQLite) that writes to a table a chart reads adds a
:class:`Change` in the same transaction, whatever issued it: ``save()``, ``update()``,
``bulk_create()``, raw SQL, another program. The exporter counts them the way it counts
mqueue's events and deletes them once they are settled (see :mod:`chartbuild.export.exporter`).
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class Change(models.Model):
    """One captured write: which table, and when (the database's clock).

    What ``manage.py chartbuild why`` tells of it: the statement's kind and the rows it
    wrote, its transaction and program (PostgreSQL), and who wrote it when the writing
    code said so (:func:`chartbuild.writes_by`). Empty for records the triggers of an
    older version, ``migrate`` or the ORM capture wrote.
    """

    id = models.BigAutoField(primary_key=True)
    table_name = models.CharField(max_length=128)
    at = models.DateTimeField(db_default=Now())
    #: ``INSERT``, ``UPDATE``, ``DELETE`` or ``TRUNCATE``; "" when unknown.
    operation = models.CharField(max_length=8, blank=True, db_default="")
    #: Rows the statement wrote (SQLite: the statements of one kind in a row on the table).
    rows = models.BigIntegerField(null=True)
    #: The writing transaction (PostgreSQL's ``txid_current()``).
    xact = models.BigIntegerField(null=True)
    #: The writing program (PostgreSQL's ``application_name``).
    program = models.CharField(max_length=64, blank=True, db_default="")
    #: Who wrote (:func:`chartbuild.writes_by`, the request's user).
    context = models.CharField(max_length=200, blank=True, db_default="")

    class Meta:
        db_table = "chartbuild_change"
        verbose_name = "captured change"

    def __str__(self) -> str:
        return f"{self.table_name} at {self.at}"


class Consumer(models.Model):
    """An exporter of this database (one per state directory) and how far it has settled.

    The exporter deletes settled records; with several state directories on one database
    (two checkouts, a staging builder), a record may be deleted only once every one of them
    has settled it. Each exporter registers its watermarks here before it reads, and prunes
    below the smallest. One not seen for a week no longer holds pruning back.
    """

    name = models.CharField(max_length=255, primary_key=True)
    events = models.BigIntegerField(default=0)
    capture = models.BigIntegerField(default=0)
    seen = models.DateTimeField()
    #: The newest record of each source that its last publication contains: what the
    #: build that read it published (``manage.py chartbuild status`` counts the records
    #: above as waiting, until a publication contains them).
    events_published = models.BigIntegerField(default=0)
    capture_published = models.BigIntegerField(default=0)

    class Meta:
        db_table = "chartbuild_consumer"
        verbose_name = "change consumer"

    def __str__(self) -> str:
        return self.name


class Charts(Change):
    """The "Charts" entry of the admin index: it links staff to the charts' pages.

    A proxy with no table of its own (see :mod:`chartbuild.admin`).
    """

    class Meta:
        proxy = True
        verbose_name = "chart"
        verbose_name_plural = "charts"
        default_permissions = ()


class BuildState(models.Model):
    """What the last published build was made from, for a builder that takes over.

    Saved with each publication to ``STORAGES["chartbuild"]`` by builders elected by
    PostgreSQL (see :mod:`chartbuild.build.handover`): one row per project
    (``CHARTBUILD_LEADER_KEY``).
    """

    key = models.CharField(max_length=255, primary_key=True, blank=True)
    serial = models.CharField(max_length=32)
    data = models.JSONField()
    saved_at = models.DateTimeField()
    saved_by = models.CharField(max_length=255)

    class Meta:
        db_table = "chartbuild_buildstate"
        verbose_name = "build state"

    def __str__(self) -> str:
        return f"build state {self.serial} saved by {self.saved_by}"


class RollupState(models.Model):
    """A rollup the database keeps (see :mod:`chartbuild.rollups`): which version of its
    declaration its tables and triggers were made for, and when it was last filled."""

    name = models.CharField(max_length=64, primary_key=True)
    version = models.CharField(max_length=64)
    base_table = models.CharField(max_length=128)
    filled_at = models.DateTimeField()

    class Meta:
        db_table = "chartbuild_rollupstate"
        verbose_name = "rollup"

    def __str__(self) -> str:
        return f"rollup {self.name} of {self.base_table}"
