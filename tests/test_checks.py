import pytest
from django.core.checks import run_checks

from chartbuild.checks import check_configuration


@pytest.fixture(autouse=True)
def state(settings, tmp_path):
    settings.CHARTBUILD_STATE_DIR = tmp_path


def messages(settings, *modules):
    settings.CHARTBUILD_GENERATORS = [f"tests.generators.{m}" for m in modules]
    return check_configuration()


def only(found, check_id):
    assert [m.id for m in found] == [check_id], found
    return found[0]


def test_a_good_configuration_passes(settings):
    assert messages(settings, "good") == []


@pytest.mark.django_db
def test_the_demo_configuration_passes():
    assert [m for m in run_checks() if m.id.startswith("chartbuild")] == []


def test_e001_a_generator_that_cannot_be_imported(settings):
    found = only(messages(settings, "broken"), "chartbuild.E001")
    assert "tests.generators.broken" in found.msg
    assert "this generator is broken on purpose" in found.msg


def test_e001_a_generator_that_does_not_exist(settings):
    found = only(messages(settings, "missing"), "chartbuild.E001")
    assert "tests.generators.missing" in found.msg


def test_e002_a_name_that_is_not_a_safe_file_name(settings):
    found = only(messages(settings, "bad_name"), "chartbuild.E002")
    assert "bad_name.../escape" in found.msg and "safe file name" in found.msg


def test_e003_two_charts_with_one_name(settings):
    found = only(messages(settings, "duplicate"), "chartbuild.E003")
    assert found.msg == "number duplicate.same is declared twice in tests.generators.duplicate"


def test_e004_an_unknown_model(settings):
    found = only(messages(settings, "unknown_model"), "chartbuild.E004")
    assert found.msg == "number unknown_model.baskets reads unknown model 'shop.basket'"


def test_e005_two_generators_with_one_name(settings):
    settings.CHARTBUILD_GENERATORS = ["tests.generators.good", "tests.generators.good"]
    found = only(check_configuration(), "chartbuild.E005")
    assert "'good'" in found.msg


def test_e006_a_chart_without_models(settings):
    found = only(messages(settings, "no_models"), "chartbuild.E006")
    assert "no_models.lonely declares no models" in found.msg


def test_e007_generators_setting_of_the_wrong_type(settings):
    settings.CHARTBUILD_GENERATORS = "tests.generators.good"
    found = only(check_configuration(), "chartbuild.E007")
    assert "CHARTBUILD_GENERATORS must be a list" in found.msg


def test_e008_mqueue_not_installed(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "mqueue"]
    found = only(check_configuration(), "chartbuild.E008")
    assert "'mqueue' is not in INSTALLED_APPS" in found.msg


def test_w001_a_model_mqueue_does_not_track_with_the_build_hook(settings):
    settings.CHARTBUILD_HOOK = "build"
    found = only(messages(settings, "untracked"), "chartbuild.W001")
    assert "auth.group is read by untracked.groups" in found.msg
    assert 'CHARTBUILD_HOOK = "build"' in found.msg
    assert '("django.contrib.auth.models.Group", ["c", "u", "d"])' in found.hint


def test_w001_a_model_tracked_without_deletes(settings):
    settings.CHARTBUILD_HOOK = "build"
    settings.MQUEUE_AUTOREGISTER = [("django.contrib.auth.models.User", ["c", "u"])]
    found = only(messages(settings, "good"), "chartbuild.W001")
    assert "does not track its d events" in found.msg


def test_an_untracked_model_is_fine_when_doit_auto_builds(settings):
    """The capture triggers see its changes, and doit auto polls or hears NOTIFY."""
    assert messages(settings, "untracked") == []


def test_e012_chartbuild_before_mqueue(settings):
    apps = [a for a in settings.INSTALLED_APPS if a != "chartbuild"]
    settings.INSTALLED_APPS = [
        *apps[: apps.index("mqueue")],
        "chartbuild",
        *apps[apps.index("mqueue") :],
    ]
    found = only(check_configuration(), "chartbuild.E012")
    assert "'chartbuild' comes before 'mqueue'" in found.msg


def test_e013_keep_events_of_the_wrong_type(settings):
    settings.CHARTBUILD_KEEP_EVENTS = 30
    found = only(check_configuration(), "chartbuild.E013")
    assert "CHARTBUILD_KEEP_EVENTS must be a positive timedelta" in found.msg


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("10m", "CHARTBUILD_MAX_LAG must be a number of seconds above 0, a timedelta"),
        ((600, 60), "CHARTBUILD_MAX_LAG: its warn limit 600 s is above its error limit"),
        (0, "CHARTBUILD_MAX_LAG must be a number of seconds above 0"),
    ],
)
def test_e022_a_freshness_limit_that_is_none(settings, value, says):
    settings.CHARTBUILD_MAX_LAG = value
    found = only(check_configuration(), "chartbuild.E022")
    assert found.msg.startswith(says)


def test_e015_a_metrics_permission_of_no_model(settings):
    settings.CHARTBUILD_METRICS_PERMISSION = "shop.read_metrics"
    found = only(check_configuration(), "chartbuild.E015")
    assert found.msg.startswith("CHARTBUILD_METRICS_PERMISSION: permission")


def test_e023_columns_of_an_unknown_field_or_an_undeclared_model(settings):
    found = messages(settings, "bad_columns")
    assert [m.id for m in found] == ["chartbuild.E023", "chartbuild.E023"]
    assert "number bad_columns.users: columns= auth.user has no field 'shoe_size'" in found[0].msg
    assert "names shop.order, which is not in its models" in found[1].msg


def test_e009_an_unknown_hook_mode(settings):
    settings.CHARTBUILD_HOOK = "later"
    found = only(check_configuration(), "chartbuild.E009")
    assert found.msg == "CHARTBUILD_HOOK must be one of 'signal', 'build', not 'later'"


def test_e001_a_generator_that_calls_sys_exit_at_import(settings):
    found = only(messages(settings, "exits_at_import"), "chartbuild.E001")
    assert "SystemExit: a generator that leaves at import" in found.msg


def test_e002_a_name_with_a_trailing_newline(settings):
    found = only(messages(settings, "newline_name"), "chartbuild.E002")
    assert "'x\\n'" in found.msg


def test_e014_names_that_collide_with_other_outputs(settings):
    found = messages(settings, "reserved")
    assert [m.id for m in found] == ["chartbuild.E014", "chartbuild.E014"]
    assert "reserved.index" in found[0].msg and "collides" in found[0].msg
    assert "'Users' differs only by case from 'users'" in found[1].msg


@pytest.mark.parametrize("module", ["static", "login"])
def test_e014_a_generator_named_as_a_folder_or_page_of_the_site(settings, module):
    settings.CHARTBUILD_GENERATORS = [f"tests.generators.{module}"]
    found = check_configuration()
    assert [m.id for m in found] == ["chartbuild.E014"]
    assert f"generator name {module!r} collides with" in found[0].msg


def test_e015_permissions_that_name_no_permission(settings):
    settings.CHARTBUILD_DEFAULT_PERMISSION = "shop.view_order"  # a real one: no error
    found = messages(settings, "bad_permission")
    assert [m.id for m in found] == ["chartbuild.E015", "chartbuild.E015"]
    assert "tests.generators.bad_permission.PERMISSION" in found[0].msg
    assert "'shop.fly_order' is not a permission of any installed model" in found[0].msg
    assert "number bad_permission.users" in found[1].msg and "'nonsense'" in found[1].msg


def test_e015_the_default_permission(settings):
    settings.CHARTBUILD_DEFAULT_PERMISSION = "shop.order"
    found = only(messages(settings, "good"), "chartbuild.E015")
    assert found.msg.startswith("CHARTBUILD_DEFAULT_PERMISSION")


def test_e016_an_unknown_sendfile_mode(settings):
    settings.CHARTBUILD_SENDFILE = "X-Send-File"
    found = only(messages(settings, "good"), "chartbuild.E016")
    assert "'X-Send-File'" in found.msg


@pytest.mark.parametrize("interval", [0, -1, "1", None])
def test_e017_a_live_interval_that_is_not_a_positive_number(settings, interval):
    settings.CHARTBUILD_LIVE_INTERVAL = interval
    found = only(messages(settings, "good"), "chartbuild.E017")
    assert repr(interval) in found.msg
