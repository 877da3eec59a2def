"""Declaring: what charts and numbers exist, what they read, and where that is stored.

``registry`` holds the ``@chart`` and ``@number`` decorators (a declaration attached to
its function), ``catalog`` finds the generator modules and what they declare (cached by
source), ``tables`` which database tables a model reads.
"""
