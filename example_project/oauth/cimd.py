"""Client ID Metadata Documents held to the same redirect-URI policy as dynamic registration.

django-oauth-toolkit fetches a CIMD client's document safely (https only, public addresses, size
and time limits) and accepts any redirect URI with an allowed scheme. ``PolicyCheckedFetcher``
(``OAUTH2_PROVIDER["CIMD_METADATA_FETCHER"]``) adds the rules registration applies: at most
``MAX_REDIRECT_URIS`` redirect URIs, ``http`` only on loopback hosts, no fragments or user info. A
document that breaks them is refused like an unreachable one: the client is unknown.
"""

from __future__ import annotations

from typing import Any

from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher

from example_project.oauth.registration import checked_metadata


class PolicyCheckedFetcher(SafeMetadataFetcher):
    def fetch(self, client_id: str) -> tuple[dict[str, Any], int]:
        metadata, max_age = self.fetch_document(client_id)
        _checked, error = checked_metadata(metadata)
        if error is not None:
            raise CIMDError(f"client metadata refused: {error.content.decode(errors='replace')}")
        return metadata, max_age

    def fetch_document(self, client_id: str) -> tuple[dict[str, Any], int]:
        """The document and how long it may be cached (DOT's SSRF-hardened fetch)."""
        return super().fetch(client_id)
