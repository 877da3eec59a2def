from django.apps import AppConfig


class ChartbuildConfig(AppConfig):
    name = "chartbuild"
    verbose_name = "chartbuild"

    def ready(self) -> None:
        from chartbuild import checks  # noqa: F401 - registers the system checks
