"""Capturing every committed write to the tables charts read, whatever issued it.

``triggers`` installs the database's change-capture triggers (PostgreSQL, SQLite) or wraps
Django's connection elsewhere; ``receivers`` guards django-mqueue's signal receivers.
"""
