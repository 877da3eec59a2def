"""The charts' URLs: ``path("charts/", include("chartbuild.site.urls"))`` in the project's URLconf.

What each serves, and to whom: the documentation's "The site" page.
"""

from django.urls import path, re_path

from chartbuild.names import SAFE_NAME
from chartbuild.site import views

app_name = "chartbuild"

NAME = SAFE_NAME.pattern

urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("manifest.json", views.manifest, name="manifest"),
    path("metrics/", views.metrics, name="metrics"),
    re_path(r"^static/(?P<filename>[a-z]+\.(?:js|css))\Z", views.asset, name="asset"),
    re_path(rf"^(?P<generator>{NAME})/\Z", views.dashboard, name="dashboard"),
    re_path(rf"^(?P<generator>{NAME})/state\.json\Z", views.state, name="state"),
    re_path(rf"^(?P<generator>{NAME})/(?P<name>{NAME})/\Z", views.item, name="item"),
    re_path(
        rf"^(?P<generator>{NAME})/(?P<name>{NAME})\.(?P<extension>vl\.json|svg|png|(?:\d+\.)?csv|json)\Z",
        views.output,
        name="output",
    ),
]
