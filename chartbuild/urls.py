"""The charts' URLs: ``path("charts/", include("chartbuild.urls"))`` in the project's URLconf.

| URL | what |
| --- | --- |
| ``charts/`` | the generators the user may see |
| ``charts/login/``, ``charts/logout/`` | sign in and out (when ``LOGIN_URL`` is not routed) |
| ``charts/manifest.json`` | the manifest, listing only what the user may see |
| ``charts/static/<file>`` | the pages' scripts and style sheet |
| ``charts/<generator>/`` | a generator's dashboard |
| ``charts/<generator>/state.json`` | what its live pages poll |
| ``charts/<generator>/<name>/`` | one chart or number, with its data as a table |
| ``charts/<generator>/<name>.<ext>`` | ``vl.json``, ``svg``, ``png``, ``csv``, ``json`` |
"""

from django.urls import path, re_path

from chartbuild import views

app_name = "chartbuild"

NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"

urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("manifest.json", views.manifest, name="manifest"),
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
