"""``oauth2_provider_settings()``: compliant with django-oauth-toolkit's deploy checks, overridable key by key;
the ``MCP_SCOPES_OAUTH`` settings object; the CIMD fetcher's policy and SSRF guard."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from oauth2_provider.cimd import CIMDError

from django_mcp_scopes.oauth.cimd import PolicyCheckedFetcher
from django_mcp_scopes.oauth.conf import oauth_settings
from django_mcp_scopes.oauth.provider import oauth2_provider_settings


def _dot_check_ids(settings, config) -> list[str]:
    settings.OAUTH2_PROVIDER = config
    out = StringIO()
    call_command("check", deploy=True, stdout=out, stderr=out, fail_level="CRITICAL")
    return sorted({word.strip("():") for word in out.getvalue().split() if word.startswith("(oauth2_provider.")})


def test_https_only_passes_every_dot_deploy_check(settings):
    assert _dot_check_ids(settings, oauth2_provider_settings(loopback_redirects=False)) == []


def test_loopback_redirects_leave_only_w008(settings):
    # DOT flags "http" whatever the host; the registration policy limits it to loopback hosts.
    assert _dot_check_ids(settings, oauth2_provider_settings()) == ["oauth2_provider.W008"]


def test_keys_can_be_overridden_one_by_one():
    config = oauth2_provider_settings(issuer="https://a.example/", ACCESS_TOKEN_EXPIRE_SECONDS=120, DCR_ENABLED=False)
    assert config["OIDC_ISS_ENDPOINT"] == "https://a.example"
    assert config["ACCESS_TOKEN_EXPIRE_SECONDS"] == 120
    assert config["DCR_ENABLED"] is False
    assert config["ROTATE_REFRESH_TOKEN"] is True
    assert oauth2_provider_settings()["ACCESS_TOKEN_EXPIRE_SECONDS"] == 600
    assert oauth2_provider_settings()["OIDC_ISS_ENDPOINT"] == ""


def test_every_key_is_a_dot_setting():
    from oauth2_provider.settings import DEFAULTS

    assert set(oauth2_provider_settings()) <= set(DEFAULTS)


@pytest.mark.parametrize(
    "value",
    [
        {"REGISTRATION_RATE_LIMIT": -1},
        {"REGISTRATION_MAX_REDIRECT_URIS": 0},
        {"REGISTRATION_RATE_LIMIT": "20"},
        {"RESOURCE_PATHS": "/mcp"},
        {"NO_SUCH_KEY": 1},
        [],
    ],
)
def test_malformed_settings_say_what_is_wrong(settings, value):
    settings.MCP_SCOPES_OAUTH = value
    problems = oauth_settings.validate()
    assert len(problems) == 1
    assert "MCP_SCOPES_OAUTH" in problems[0]


def test_a_malformed_setting_raises_when_read(settings):
    settings.MCP_SCOPES_OAUTH = {"REGISTRATION_RATE_LIMIT": -1}
    with pytest.raises(ImproperlyConfigured, match="REGISTRATION_RATE_LIMIT"):
        _ = oauth_settings.REGISTRATION_RATE_LIMIT


class _Documents(PolicyCheckedFetcher):
    def __init__(self, document):
        self.document = document

    def fetch_document(self, client_id):
        return self.document, 300


def test_a_metadata_document_outside_the_policy_is_refused():
    with pytest.raises(CIMDError, match="loopback"):
        _Documents({"client_id": "https://c.example/m", "redirect_uris": ["http://c.example/cb"]}).fetch("x")
    with pytest.raises(CIMDError, match="At most"):
        _Documents({"redirect_uris": [f"https://c.example/{i}" for i in range(9)]}).fetch("x")
    document = {"client_id": "https://c.example/m", "redirect_uris": ["http://127.0.0.1/cb"]}
    assert _Documents(document).fetch("x") == (document, 300)


@pytest.mark.parametrize(
    "client_id",
    ["https://127.0.0.1/client", "https://localhost/client", "https://[::1]/client", "https://169.254.169.254/m"],
)
def test_metadata_documents_on_non_public_addresses_are_never_fetched(client_id):
    with pytest.raises(CIMDError):
        PolicyCheckedFetcher().fetch(client_id)


def _our_ids(settings, **values) -> list[str]:
    for key, value in values.items():
        setattr(settings, key, value)
    out = StringIO()
    call_command("check", tags=["mcp_scopes"], stdout=out, stderr=out, fail_level="CRITICAL")
    return sorted({w.strip("():") for w in out.getvalue().split() if w.startswith("(django_mcp_scopes.") and "1" in w})


def test_check_e101_names_a_malformed_setting(settings):
    assert "django_mcp_scopes.E101" in _our_ids(settings, MCP_SCOPES_OAUTH={"REGISTRATION_RATE_LIMIT": "many"})


def test_check_w101_when_the_urls_are_mounted_without_the_validator(settings):
    ids = _our_ids(settings, ROOT_URLCONF="tests.oauth_urls", OAUTH2_PROVIDER=oauth2_provider_settings())
    assert "django_mcp_scopes.W101" not in ids
    config = {
        **oauth2_provider_settings(),
        "OAUTH2_VALIDATOR_CLASS": "oauth2_provider.oauth2_validators.OAuth2Validator",
    }
    assert "django_mcp_scopes.W101" in _our_ids(settings, OAUTH2_PROVIDER=config)
