"""Validation of scope names (RFC 6749 section 3.3 scope-token grammar)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

SCOPE_NAME_MAX_LENGTH = 100

# scope-token = 1*NQCHAR ; NQCHAR = %x21 / %x23-5B / %x5D-7E
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


def is_valid_scope_name(name: object) -> bool:
    return isinstance(name, str) and 0 < len(name) <= SCOPE_NAME_MAX_LENGTH and _SCOPE_TOKEN.fullmatch(name) is not None


@deconstructible
class ScopeNameValidator:
    """Refuse anything that is not an RFC 6749 scope-token of sensible length."""

    code = "invalid_scope_name"

    def __call__(self, value: str) -> None:
        if not value:
            raise ValidationError(_("A scope name cannot be empty."), code=self.code)
        if len(value) > SCOPE_NAME_MAX_LENGTH:
            raise ValidationError(
                _("A scope name can be at most %(max)d characters long."),
                code=self.code,
                params={"max": SCOPE_NAME_MAX_LENGTH},
            )
        leading = value[:1].isspace()
        trailing = value[-1:].isspace()
        if leading or trailing:
            if value.strip() == "":
                message = _("A scope name cannot be only spaces; type a name such as entries:read.")
            elif leading and trailing:
                message = _("A scope name cannot begin or end with a space; remove the spaces around %(name)s.")
            elif leading:
                message = _("A scope name cannot begin with a space; remove the space before %(name)s.")
            else:
                message = _("A scope name cannot end with a space; remove the space after %(name)s.")
            raise ValidationError(message, code=self.code, params={"name": repr(value.strip())})
        bad = sorted({ch for ch in value if not _SCOPE_TOKEN.fullmatch(ch)})
        if bad:
            shown = ", ".join(repr(ch) for ch in bad)
            raise ValidationError(
                _(
                    "A scope name may only hold printable ASCII characters other than space, "
                    '" and \\ (RFC 6749 section 3.3); remove %(chars)s.'
                ),
                code=self.code,
                params={"chars": shown},
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScopeNameValidator)

    def __hash__(self) -> int:
        return hash(self.__class__)


validate_scope_name = ScopeNameValidator()
