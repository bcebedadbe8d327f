"""Credentials as Docker clients send them, and registry names as users type them.

The docker CLI and docker-py send credentials per request in `X-Registry-Auth`
(base64url JSON of an AuthConfig) and to `POST /auth` as plain JSON; `docker login`
names a registry as `host:port`, a URL, or nothing for Docker Hub. This module turns
both into what the registry client contract speaks: `Credentials` and `host[:port]`.
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import urlsplit

from dockyard.formats.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN
from dockyard.plugin.contracts.registry import Credentials

# The key Docker Hub's credentials are stored and sent under, for historical reasons.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = {"", DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, "registry-1.docker.io", "registry.hub.docker.com",
              "index.docker.io/v1"}


def registry_host(server_address: str) -> str:
    """`https://index.docker.io/v1/` -> docker.io; `http://127.0.0.1:5000/` -> 127.0.0.1:5000."""
    address = (server_address or "").strip()
    if "://" in address:
        parts = urlsplit(address)
        address = parts.netloc + parts.path
    address = address.rstrip("/")
    if address in _HUB_NAMES:
        return DEFAULT_DOMAIN
    return address.split("/", 1)[0]


def credentials_from_auth_config(config: dict | None) -> Credentials | None:
    """An AuthConfig dict (username/password, `auth` as base64 "user:pass", or an
    identity token) as Credentials; None when it carries nothing."""
    if not isinstance(config, dict):
        return None
    username = str(config.get("username") or config.get("Username") or "")
    password = str(config.get("password") or config.get("Password") or "")
    token = str(config.get("identitytoken") or config.get("IdentityToken") or "")
    encoded = config.get("auth") or config.get("Auth")
    if encoded and not username:
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
    if not (username or token):
        return None
    return Credentials(username=username, password=password, identity_token=token)


def decode_registry_auth(header: str | None) -> Credentials | None:
    """`X-Registry-Auth`: base64url JSON, padded or not. Like dockerd, an undecodable
    header means anonymous access rather than an error: the registry will say if that
    is not enough."""
    if not header:
        return None
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        return credentials_from_auth_config(json.loads(raw))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
