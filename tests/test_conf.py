import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_mcp_scopes.conf import DEFAULTS, mcp_scopes_settings


def test_defaults_are_valid():
    assert mcp_scopes_settings.validate() == []
    assert mcp_scopes_settings.BASE_URL is None
    assert mcp_scopes_settings.AUTHORIZATION_SERVERS == []
    assert mcp_scopes_settings.CACHE_ALIAS == "default"
    assert DEFAULTS["REGISTRY_REFRESH_SECONDS"] == mcp_scopes_settings.REGISTRY_REFRESH_SECONDS
    assert mcp_scopes_settings.unknown_keys() == []


def test_values_are_read_and_normalised():
    with override_settings(
        MCP_SCOPES={
            "BASE_URL": "https://api.example.com/",
            "AUTHORIZATION_SERVERS": ["https://auth.example.com"],
            "REGISTRY_REFRESH_SECONDS": 2,
            "ROOT_RESOURCE_PATH": "/mcp/",
        }
    ):
        assert mcp_scopes_settings.BASE_URL == "https://api.example.com"
        assert mcp_scopes_settings.AUTHORIZATION_SERVERS == ["https://auth.example.com"]
        assert mcp_scopes_settings.REGISTRY_REFRESH_SECONDS == 2.0
        assert mcp_scopes_settings.ROOT_RESOURCE_PATH == "mcp"


def test_issuers_are_kept_byte_for_byte():
    # An issuer is compared byte for byte by clients: never normalise it (some end in "/").
    issuers = ["https://tenant.idp.example/", "https://auth.example.com/realms/x"]
    with override_settings(MCP_SCOPES={"AUTHORIZATION_SERVERS": issuers}):
        assert issuers == mcp_scopes_settings.AUTHORIZATION_SERVERS


MALFORMED = {
    "BASE_URL no scheme": ("BASE_URL", "api.example.com"),
    "BASE_URL ftp": ("BASE_URL", "ftp://api.example.com"),
    "BASE_URL query": ("BASE_URL", "https://api.example.com/?x=1"),
    "BASE_URL fragment": ("BASE_URL", "https://api.example.com/#x"),
    "BASE_URL space": ("BASE_URL", "https://api.example .com"),
    "BASE_URL bad port": ("BASE_URL", "https://api.example.com:99999"),
    "BASE_URL not a str": ("BASE_URL", 42),
    "BASE_URL non-ASCII host": ("BASE_URL", "https://b\u00fccher.example"),
    "AUTHORIZATION_SERVERS str": ("AUTHORIZATION_SERVERS", "https://auth.example.com"),
    "AUTHORIZATION_SERVERS relative": ("AUTHORIZATION_SERVERS", ["auth.example.com"]),
    "AUTHORIZATION_SERVERS query": ("AUTHORIZATION_SERVERS", ["https://auth.example.com/?a=b"]),
    "AUTHORIZATION_SERVERS non-str": ("AUTHORIZATION_SERVERS", [None]),
    "CACHE_ALIAS unknown": ("CACHE_ALIAS", "nope"),
    "CACHE_KEY_PREFIX empty": ("CACHE_KEY_PREFIX", ""),
    "CACHE_KEY_PREFIX space": ("CACHE_KEY_PREFIX", "a b"),
    "REGISTRY_REFRESH_SECONDS negative": ("REGISTRY_REFRESH_SECONDS", -1),
    "REGISTRY_REFRESH_SECONDS str": ("REGISTRY_REFRESH_SECONDS", "1"),
    "REGISTRY_REFRESH_SECONDS bool": ("REGISTRY_REFRESH_SECONDS", True),
    "REGISTRY_REFRESH_SECONDS nan": ("REGISTRY_REFRESH_SECONDS", float("nan")),
    "METADATA_MAX_AGE float": ("METADATA_MAX_AGE", 1.5),
    "ROOT_RESOURCE_PATH empty": ("ROOT_RESOURCE_PATH", "/"),
    "ALLOW_TOKENS_WITHOUT_RESOURCE str": ("ALLOW_TOKENS_WITHOUT_RESOURCE", "no"),
    "MAX_BODY_BYTES zero": ("MAX_BODY_BYTES", 0),
    "INTROSPECTION_TIMEOUT_SECONDS zero": ("INTROSPECTION_TIMEOUT_SECONDS", 0),
    "LISTING_POLICY unknown": ("LISTING_POLICY", "public"),
    "LIST_ALL_OPERATIONS str": ("LIST_ALL_OPERATIONS", "yes"),
}


@pytest.mark.parametrize(("key", "value"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_setting_names_itself(key, value):
    with override_settings(MCP_SCOPES={key: value}):
        problems = mcp_scopes_settings.validate()
        assert len(problems) == 1
        assert f"MCP_SCOPES[{key!r}]" in problems[0]
        assert repr(value) in problems[0]
        with pytest.raises(ImproperlyConfigured, match=key):
            getattr(mcp_scopes_settings, key)


def test_settings_not_a_dict():
    with override_settings(MCP_SCOPES=["BASE_URL"]):
        assert mcp_scopes_settings.validate() == ["MCP_SCOPES must be a dict; got list."]
        with pytest.raises(ImproperlyConfigured):
            mcp_scopes_settings.BASE_URL


def test_unknown_keys_are_listed():
    with override_settings(MCP_SCOPES={"BASE_URl": "https://x.example", "CACHE_ALIAS": "default"}):
        assert mcp_scopes_settings.unknown_keys() == ["BASE_URl"]
        assert mcp_scopes_settings.validate() == []


def test_missing_settings_use_defaults():
    with override_settings():
        from django.conf import settings

        del settings.MCP_SCOPES
        assert mcp_scopes_settings.validate() == []
        assert mcp_scopes_settings.CACHE_KEY_PREFIX.startswith("mcp_scopes:")


def test_values_are_remembered_until_the_settings_change():
    with override_settings(MCP_SCOPES={"TOKEN_CACHE_SECONDS": 7}):
        assert mcp_scopes_settings.TOKEN_CACHE_SECONDS == 7.0
        with override_settings(MCP_SCOPES={"TOKEN_CACHE_SECONDS": 9}):
            assert mcp_scopes_settings.TOKEN_CACHE_SECONDS == 9.0
        assert mcp_scopes_settings.TOKEN_CACHE_SECONDS == 7.0


def test_a_malformed_value_is_never_remembered():
    with override_settings(MCP_SCOPES={"TOKEN_CACHE_SECONDS": "soon"}):
        for _ in range(2):
            with pytest.raises(ImproperlyConfigured, match="TOKEN_CACHE_SECONDS"):
                mcp_scopes_settings.TOKEN_CACHE_SECONDS
    assert float(DEFAULTS["TOKEN_CACHE_SECONDS"]) == mcp_scopes_settings.TOKEN_CACHE_SECONDS


def test_listing_policy_default_and_its_deprecated_spelling():
    assert mcp_scopes_settings.LISTING_POLICY == "obtainable"
    assert mcp_scopes_settings.LIST_ALL_OPERATIONS is False
    with override_settings(MCP_SCOPES={"LIST_ALL_OPERATIONS": True}):
        with pytest.warns(DeprecationWarning, match="LIST_ALL_OPERATIONS"):
            assert mcp_scopes_settings.LISTING_POLICY == "all"
        assert mcp_scopes_settings.LIST_ALL_OPERATIONS is True
    both = {"LIST_ALL_OPERATIONS": True, "LISTING_POLICY": "strict"}
    with override_settings(MCP_SCOPES=both), pytest.raises(ImproperlyConfigured, match="remove LIST_ALL_OPERATIONS"):
        mcp_scopes_settings.LISTING_POLICY
