from django.apps import AppConfig


class ChartappConfig(AppConfig):
    name = "tests.chartapp"
    label = "chartapp"
