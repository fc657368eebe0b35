"""Client ID Metadata Documents held to the registration policy (``OAUTH2_PROVIDER["CIMD_METADATA_FETCHER"]``).

django-oauth-toolkit fetches a CIMD client's document safely, and this class keeps that fetch: https
only, the host resolved once and every address checked (no private, loopback, link-local or
otherwise non-global address), the connection made to the checked address, no redirects, a time
limit (``CIMD_FETCH_TIMEOUT_SECONDS``), a size limit (``CIMD_MAX_DOCUMENT_SIZE``), a bounded cache
lifetime (``CIMD_METADATA_MIN_AGE_SECONDS`` .. ``CIMD_METADATA_MAX_AGE_SECONDS``), a failure
backoff and a cap on concurrent fetches. DOT accepts any redirect URI with an allowed scheme;
``PolicyCheckedFetcher`` adds the rules anonymous registration applies (``registration.checked_metadata``).
A document that breaks them is refused like an unreachable one: the client is unknown.
"""

from __future__ import annotations

from typing import Any

from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher

from django_mcp_scopes.oauth.registration import checked_metadata


class PolicyCheckedFetcher(SafeMetadataFetcher):
    def fetch(self, client_id: str) -> tuple[dict[str, Any], int]:
        metadata, max_age = self.fetch_document(client_id)
        _checked, error = checked_metadata(metadata)
        if error is not None:
            raise CIMDError(f"client metadata refused: {error.content.decode(errors='replace')}")
        return metadata, max_age

    def fetch_document(self, client_id: str) -> tuple[dict[str, Any], int]:
        """The document and how long it may be cached (DOT's SSRF-hardened fetch); tests replace this."""
        return super().fetch(client_id)
