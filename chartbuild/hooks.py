"""django-mqueue's hook: ``MQUEUE_HOOKS = {"chartbuild": {"path": "chartbuild.hooks"}}``.

See :mod:`chartbuild.live.hooks`.
"""

from chartbuild.live.hooks import save

__all__ = ["save"]
