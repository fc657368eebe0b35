import pytest
from django.core.exceptions import ValidationError

from django_mcp_scopes.validators import SCOPE_NAME_MAX_LENGTH, is_valid_scope_name, validate_scope_name

GOOD = [
    "entries:read",
    "a",
    "offline_access",
    "https://api.example.com/read",
    "x" * SCOPE_NAME_MAX_LENGTH,
    "!#[]~",
]
BAD = {
    "space": ("entries read", "' '"),
    "quote": ('entries"read', "'\"'"),
    "backslash": ("entries\\read", "'\\\\'"),
    "control char": ("entries\x00read", "'\\x00'"),
    "tab": ("entries\tread", "'\\t'"),
    "DEL": ("entries\x7f", "'\\x7f'"),
    "non-ASCII": ("entrées:read", "'é'"),
}


@pytest.mark.parametrize("name", GOOD)
def test_valid_names_pass(name):
    validate_scope_name(name)
    assert is_valid_scope_name(name)


@pytest.mark.parametrize(("name", "shown"), BAD.values(), ids=BAD.keys())
def test_invalid_characters_are_named_in_the_message(name, shown):
    with pytest.raises(ValidationError) as excinfo:
        validate_scope_name(name)
    message = excinfo.value.messages[0]
    assert "RFC 6749" in message
    assert shown in message
    assert not is_valid_scope_name(name)


def test_empty_name():
    with pytest.raises(ValidationError, match="cannot be empty"):
        validate_scope_name("")
    assert not is_valid_scope_name("")


def test_too_long_name():
    with pytest.raises(ValidationError, match=f"at most {SCOPE_NAME_MAX_LENGTH} characters"):
        validate_scope_name("x" * (SCOPE_NAME_MAX_LENGTH + 1))


def test_non_string_is_not_valid():
    assert not is_valid_scope_name(None)
    assert not is_valid_scope_name(42)


def test_validator_deconstructs_for_migrations():
    path, _args, _kwargs = validate_scope_name.deconstruct()
    assert path == "django_mcp_scopes.validators.ScopeNameValidator"
    assert validate_scope_name == type(validate_scope_name)()


SPACED = {
    "leading": (" entries:read", "cannot begin with a space; remove the space before 'entries:read'."),
    "trailing": ("entries:read ", "cannot end with a space; remove the space after 'entries:read'."),
    "both": (" entries:read  ", "cannot begin or end with a space; remove the spaces around 'entries:read'."),
    "leading tab": ("\tentries:read", "cannot begin with a space"),
    "trailing newline": ("entries:read\n", "cannot end with a space"),
    "only spaces": ("   ", "cannot be only spaces"),
}


@pytest.mark.parametrize(("name", "expected"), SPACED.values(), ids=SPACED.keys())
def test_spaces_around_a_name_get_their_own_message(name, expected):
    with pytest.raises(ValidationError) as excinfo:
        validate_scope_name(name)
    assert expected in excinfo.value.messages[0]
    assert not is_valid_scope_name(name)


def test_a_space_inside_a_name_still_names_the_character():
    with pytest.raises(ValidationError) as excinfo:
        validate_scope_name("entries read")
    assert "RFC 6749" in excinfo.value.messages[0] and "' '" in excinfo.value.messages[0]
