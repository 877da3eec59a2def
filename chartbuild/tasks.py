"""The doit task graph a project's ``dodo.py`` imports: ``from chartbuild.tasks import *``.

See :mod:`chartbuild.build.tasks`.
"""

from chartbuild.build.tasks import *  # noqa: F403
from chartbuild.build.tasks import __all__, doit_config  # noqa: F401
