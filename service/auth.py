"""API keys: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

Keys come from ``CHURN_API_KEYS`` / ``CHURN_API_KEYS_FILE`` through Settings (never a CLI
flag). When keys are configured they guard ``/v1/*``; ``/admin/*`` is always guarded and
refuses every request when no key is configured. A presented key is compared with every
configured key in constant time, so the time taken tells nothing about how close it was.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from service.errors import Forbidden, Unauthorized

NO_KEY = "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
WRONG_KEY = "invalid API key"
ADMIN_DISABLED = "admin endpoints are disabled: no API key is configured (set CHURN_API_KEYS or CHURN_API_KEYS_FILE)"


class ApiKeys:
    """The configured keys; ``check`` raises Unauthorized (none sent) or Forbidden (wrong)."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode() for key in keys if key]

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def check(self, presented: str | None) -> None:
        if presented is None:
            raise Unauthorized(NO_KEY)
        candidate = presented.encode()
        matched = False
        for key in self._keys:  # no early exit: every key is compared
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise Forbidden(WRONG_KEY)


def presented_key(request: Request) -> str | None:
    """The key a request carries, from X-API-Key or an Authorization Bearer token."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def api_keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.api_keys
    return keys


Keys = Annotated[ApiKeys, Depends(api_keys)]


async def require_api_key(request: Request, keys: Keys) -> None:
    """Guards /v1/* (installed only when keys are configured)."""
    keys.check(presented_key(request))


async def require_admin_key(request: Request, keys: Keys) -> None:
    """Guards /admin/*: refuses everything while no key is configured."""
    if not keys.configured:
        raise Forbidden(ADMIN_DISABLED)
    keys.check(presented_key(request))
