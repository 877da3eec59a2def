from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class ChartbuildConfig(AppConfig):
    name = "chartbuild"
    verbose_name = "chartbuild"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chartbuild import checks  # noqa: F401 - its checks register
        from chartbuild.capture import receivers
        from chartbuild.capture import triggers as capture
        from chartbuild.rollups import sync as rollups

        post_migrate.connect(
            capture.on_post_migrate, sender=self, dispatch_uid="chartbuild.capture"
        )
        post_migrate.connect(
            rollups.on_post_migrate, sender=self, dispatch_uid="chartbuild.rollups"
        )
        connection_created.connect(capture.on_connection_created, dispatch_uid="chartbuild.capture")
        receivers.install()
