"""``DirectoryFetcher``: Client ID Metadata Documents from a directory (see live_settings.py)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from oauth2_provider.cimd import CIMDError

from django_mcp_scopes.oauth.cimd import PolicyCheckedFetcher


def document_path(directory: str | Path, client_id: str) -> Path:
    return Path(directory) / (hashlib.sha256(client_id.encode()).hexdigest() + ".json")


class DirectoryFetcher(PolicyCheckedFetcher):
    def fetch_document(self, client_id: str) -> tuple[dict, int]:
        path = document_path(os.environ["CIMD_DOCUMENTS_DIR"], client_id)
        if not path.exists():
            raise CIMDError("no such client document")
        return json.loads(path.read_text()), 300
