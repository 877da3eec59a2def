"""Keeping charts live: rebuilding on every commit, from a long-lived builder.

``auto`` is ``doit auto``; ``watcher`` turns wake-ups (``wakeup``, ``notify``), polls and
source changes into builds; ``hooks`` is django-mqueue's hook; ``leader`` elects one
builder among machines; ``reconnect`` keeps connections usable; ``status`` says who builds.
"""
