"""API keys: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

Keys come from Settings (never a CLI flag): ``CHURN_API_KEYS`` / ``CHURN_API_KEYS_FILE``
guard ``/v1/*`` when set; ``CHURN_ADMIN_KEYS`` / ``CHURN_ADMIN_KEYS_FILE`` guard
``/admin/*``, which refuses every request while none is set (a scoring key never opens it).
Serving ``/v1/*`` without keys is allowed on a loopback address only, unless
``CHURN_ALLOW_ANONYMOUS`` says a gateway in front does the authentication
(``check_exposure``). A presented key is compared with every configured key in constant
time, so the time taken tells nothing about how close it was.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Annotated

from fastapi import Depends, Request

from features.errors import ChurnError
from features.settings import Settings
from service.errors import Forbidden, Unauthorized

log = logging.getLogger("churn.serve")
NO_KEY = "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
WRONG_KEY = "invalid API key"
ADMIN_DISABLED = "admin endpoints are disabled: no admin key is configured (set CHURN_ADMIN_KEYS or CHURN_ADMIN_KEYS_FILE)"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_exposure(settings: Settings) -> None:
    """Refuse to serve /v1/* to a network without keys; warn whenever there are none."""
    if settings.api_keys:
        return
    if not is_loopback(settings.host) and not settings.allow_anonymous:
        raise ChurnError(
            f"refusing to serve on {settings.host} without API keys: anyone who reaches it "
            "could score accounts. Set CHURN_API_KEYS or CHURN_API_KEYS_FILE, or "
            "CHURN_ALLOW_ANONYMOUS=true when a gateway in front authenticates every request"
        )
    log.warning(
        f"no API keys configured: /v1/* answers anyone who can reach {settings.host}"
        " (set CHURN_API_KEYS or CHURN_API_KEYS_FILE)"
    )


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


async def admin_keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.admin_keys
    return keys


Keys = Annotated[ApiKeys, Depends(api_keys)]
AdminKeys = Annotated[ApiKeys, Depends(admin_keys)]


async def require_api_key(request: Request, keys: Keys) -> None:
    """Guards /v1/* (installed only when keys are configured)."""
    keys.check(presented_key(request))


async def require_admin_key(request: Request, keys: AdminKeys) -> None:
    """Guards /admin/*: refuses everything while no admin key is configured."""
    if not keys.configured:
        raise Forbidden(ADMIN_DISABLED)
    keys.check(presented_key(request))
