"""Credentials are never shown: the user-info part of URIs is stripped before display.

A tracking URI such as ``http://user:secret@mlflow:5000`` or a PostgreSQL backend
``postgresql://churn:pw@db/mlflow`` may reach a log line, ``/ready``, ``/v1/model`` or an
error message (MLflow's own exceptions quote the URI). Everything shown passes through
``redact`` first.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]*@")


def redact(text: str) -> str:
    """``text`` with every ``scheme://user:password@`` reduced to ``scheme://``."""
    return _USERINFO.sub(r"\g<scheme>", text)
