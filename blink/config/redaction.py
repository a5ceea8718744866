"""Secrets inside URLs: hidden in what is printed, registered with the log filter."""

from __future__ import annotations

from urllib.parse import urlsplit


def redact(url: str) -> str:
    """Hide the password of a URL (for logs and error messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def redact_secret(url: str) -> str:
    """The password inside a URL, or '' (registered with the log filter)."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
