from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import modify_settings, override_settings

OUR_BACKEND = {"SCOPES_BACKEND_CLASS": "django_mcp_scopes.backends.DatabaseScopes"}
GOOD_DEPLOY = {
    "BASE_URL": "https://mcp.example.com",
    "AUTHORIZATION_SERVERS": ["https://auth.example.com"],
}
REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1",
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }
}


def check(*, deploy=False, **options):
    """Run `manage.py check [--deploy]`; return (failed, output)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("check", deploy=deploy, stdout=out, stderr=err, **options)
    except SystemCheckError as exc:
        return True, str(exc)
    return False, err.getvalue() + out.getvalue()


def our_ids(output):
    return sorted({word.strip("():") for word in output.split() if word.startswith("(django_mcp_scopes.")})


def test_test_settings_are_clean():
    failed, output = check()
    assert not failed
    assert our_ids(output) == []


def test_malformed_setting_fails_check():
    with override_settings(MCP_SCOPES={"BASE_URL": "mcp.example.com", "REGISTRY_REFRESH_SECONDS": -1}):
        failed, output = check()
    assert failed
    assert our_ids(output) == ["django_mcp_scopes.E001"]
    assert "MCP_SCOPES['BASE_URL'] must be an absolute http(s) URL" in output
    assert "MCP_SCOPES['REGISTRY_REFRESH_SECONDS'] must be a number >= 0" in output
    assert "HINT: Fix MCP_SCOPES" in output


def test_settings_not_a_dict_fails_check():
    with override_settings(MCP_SCOPES="https://mcp.example.com"):
        failed, output = check()
    assert failed
    assert "MCP_SCOPES must be a dict; got str." in output


def test_unknown_key_warns():
    with override_settings(MCP_SCOPES={"BASE_UR": "https://mcp.example.com"}):
        failed, output = check()
    assert not failed
    assert our_ids(output) == ["django_mcp_scopes.W001"]
    assert "MCP_SCOPES['BASE_UR'] is not a django-mcp-scopes setting" in output
    assert "Did you mean 'BASE_URL'?" in output
    with override_settings(MCP_SCOPES={"ZZZ": 1}):
        _, output = check()
    assert "Did you mean" not in output
    assert "known keys: ALLOWED_ORIGINS, ALLOW_TOKENS_WITHOUT_RESOURCE" in output


def test_no_authorization_server_fails_check():
    # Only our checks (--tag mcp_scopes): the project's URLs still import oauth2_provider's views.
    with modify_settings(INSTALLED_APPS={"remove": ["oauth2_provider"]}):
        failed, output = check(tags=["mcp_scopes"])
        assert failed
        assert our_ids(output) == ["django_mcp_scopes.E002"]
        assert 'HINT: Set MCP_SCOPES["AUTHORIZATION_SERVERS"]' in output
        with override_settings(MCP_SCOPES={"AUTHORIZATION_SERVERS": ["https://auth.example.com"]}):
            failed, output = check(tags=["mcp_scopes"])
            assert "django_mcp_scopes.E002" not in output


@pytest.mark.parametrize(
    "oauth2_provider",
    [
        {},
        {"SCOPES_BACKEND_CLASS": "oauth2_provider.scopes.SettingsScopes"},
        {"SCOPES_BACKEND_CLASS": "no.such.Backend"},
    ],
    ids=["default", "settings-scopes", "unimportable"],
)
def test_other_scopes_backend_warns(oauth2_provider):
    with override_settings(OAUTH2_PROVIDER=oauth2_provider):
        failed, output = check()
    assert not failed
    assert "django_mcp_scopes.W002" in output
    assert 'SCOPES_BACKEND_CLASS"] = "django_mcp_scopes.backends.DatabaseScopes"' in output


def test_subclass_of_our_backend_is_fine():
    with override_settings(OAUTH2_PROVIDER={"SCOPES_BACKEND_CLASS": "tests.test_checks.MyScopes"}):
        assert "W002" not in check()[1]


from django_mcp_scopes.backends import DatabaseScopes  # noqa: E402


class MyScopes(DatabaseScopes):
    pass


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def test_deploy_without_base_url_and_with_locmem_warns():
    with override_settings(MCP_SCOPES={}, CACHES=LOCMEM):
        _, output = check(deploy=True)
    assert "django_mcp_scopes.W003" in output
    assert "django_mcp_scopes.W004" in output
    assert "LocMemCache" in output
    with override_settings(MCP_SCOPES={}, CACHES=LOCMEM):
        _, output = check()
    assert "W003" not in output and "W004" not in output  # deploy-only


def test_deploy_with_dummy_cache_warns():
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    with override_settings(CACHES=dummy, MCP_SCOPES=GOOD_DEPLOY):
        _, output = check(deploy=True)
    assert our_ids(output) == ["django_mcp_scopes.W004"]
    assert "caches nothing" in output


def test_deploy_with_http_urls_fails():
    with override_settings(
        CACHES=REDIS,
        MCP_SCOPES={
            "BASE_URL": "http://mcp.example.com",
            "AUTHORIZATION_SERVERS": ["http://auth.example.com"],
        },
    ):
        failed, output = check(deploy=True)
    assert failed
    assert our_ids(output) == ["django_mcp_scopes.E003", "django_mcp_scopes.E004"]
    assert "http://auth.example.com is not https" in output


def test_deploy_with_http_dot_issuer_fails():
    with override_settings(
        CACHES=REDIS,
        MCP_SCOPES={"BASE_URL": "https://mcp.example.com"},
        OAUTH2_PROVIDER={**OUR_BACKEND, "OIDC_ISS_ENDPOINT": "http://mcp.example.com"},
    ):
        failed, output = check(deploy=True)
    assert failed
    assert our_ids(output) == ["django_mcp_scopes.E004"]


def test_tag_runs_only_our_checks():
    with override_settings(MCP_SCOPES={"BASE_UR": 1}, CACHES=LOCMEM):
        failed, output = check(deploy=True, tags=["mcp_scopes"], fail_level="WARNING")
    assert failed
    assert our_ids(output) == ["django_mcp_scopes.W001", "django_mcp_scopes.W003", "django_mcp_scopes.W004"]
    assert "security.W" not in output


def test_good_deploy_settings_are_clean():
    with override_settings(CACHES=REDIS, MCP_SCOPES=GOOD_DEPLOY):
        _, output = check(deploy=True)
    assert our_ids(output) == []


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (None, "socket_connect_timeout or socket_timeout"),
        ({"socket_timeout": 0.25}, "socket_connect_timeout"),
        ({"socket_timeout": 5, "socket_connect_timeout": 1}, "socket_timeout"),
        ({"socket_timeout": "0.2", "socket_connect_timeout": 0.2}, "socket_timeout"),
        ({"socket_timeout": True, "socket_connect_timeout": 0.2}, "socket_timeout"),
        ({"socket_timeout": 0, "socket_connect_timeout": 0.2}, "socket_timeout"),
    ],
)
def test_deploy_demands_redis_socket_timeouts(options, named):
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1"}}
    if options is not None:
        caches["default"]["OPTIONS"] = options
    with override_settings(CACHES=caches, MCP_SCOPES=GOOD_DEPLOY):
        failed, output = check(deploy=True)
    assert failed
    assert our_ids(output) == ["django_mcp_scopes.E005"]
    assert f"sets no {named} of at most 1 s" in output
    with override_settings(CACHES=caches, MCP_SCOPES=GOOD_DEPLOY):
        _, output = check()
    assert "E005" not in output  # deploy-only


def test_django_redis_options_are_read_too():
    """django-redis spells the options in capitals (not installed here: the check is called directly,
    since `manage.py check` would import the backend)."""
    from django_mcp_scopes.checks import check_deploy

    def ids(options):
        caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://x", "OPTIONS": options}}
        with override_settings(CACHES=caches, MCP_SCOPES=GOOD_DEPLOY):
            return [(message.id, message.msg) for message in check_deploy()]

    [(check_id, message)] = ids({"socket_timeout": 0.2})
    assert check_id == "django_mcp_scopes.E005"
    assert "SOCKET_CONNECT_TIMEOUT or SOCKET_TIMEOUT" in message
    assert ids({"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1}) == []


@pytest.mark.django_db
def test_scopes_the_mounted_operations_need_are_checked_against_the_database():
    from django_mcp_scopes.models import Scope
    from tests.mcp_app import ensure_scopes, remove_scopes

    remove_scopes()
    _, output = check(databases=["default"])
    assert "django_mcp_scopes.W006" in output
    assert "entries:publish (" in output and "entries:read (" in output
    assert "mcp_scopes sync" in output
    _, output = check()  # a database check: plain `check` (and runserver) stay quiet
    assert "W006" not in output

    ensure_scopes()
    _, output = check(databases=["default"])
    assert our_ids(output) == []

    Scope.objects.filter(name="entries:publish").update(is_active=False)
    _, output = check(databases=["default"])
    assert our_ids(output) == ["django_mcp_scopes.W007"]
    assert "need scopes that are inactive: entries:publish (" in output


@pytest.mark.parametrize(
    ("urlconf", "expected", "fragment"),
    [
        ("tests.check_urlconfs.dot_first", ["django_mcp_scopes.W008"], "is answered by oauth2_provider.views"),
        ("tests.check_urlconfs.no_metadata", ["django_mcp_scopes.E006"], "Nothing serves /.well-known/"),
        (
            "tests.check_urlconfs.no_authorization_server",
            ["django_mcp_scopes.E007"],
            "nothing serves /.well-known/oauth-authorization-server",
        ),
        ("tests.check_urlconfs.ours_first", [], ""),
    ],
)
def test_metadata_urls_must_reach_this_package(urlconf, expected, fragment):
    with override_settings(ROOT_URLCONF=urlconf):
        _, output = check(tags=["mcp_scopes"])
    assert our_ids(output) == expected
    assert fragment in output
