"""PostgreSQL URLs as messages may show them: never with the password."""

from __future__ import annotations

import urllib.parse

__all__ = ["redact_url", "scrub", "url_secrets"]

# libpq URL query parameters that carry secrets.
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or the query) replaced by ``***``.

    Never raises: text that does not parse as a URL is reduced to its scheme.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            user, colon, _password = userinfo.partition(":")
            netloc = f"{user}{':***' if colon else ''}@{hosts}"
        query = parts.query
        if query:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            query = urllib.parse.urlencode(
                [(k, "***" if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs],
                safe="*/:",
            )
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return url.partition(":")[0] + "://***"


def url_secrets(url: str) -> tuple[str, ...]:
    """Every secret ``url`` carries, as written and as decoded, longest first.

    Messages from libpq or psycopg may quote a connection string back (a
    malformed one, say); :func:`scrub` removes these from any text.
    """
    found: set[str] = set()
    try:
        parts = urllib.parse.urlsplit(url)
        userinfo, at, _hosts = parts.netloc.rpartition("@")
        if at:
            _user, colon, password = userinfo.partition(":")
            if colon and password:
                found.update({password, urllib.parse.unquote(password)})
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if key.lower() in _SECRET_PARAMETERS and value:
                found.add(value)
        for key, value in _raw_query_pairs(parts.query):
            if key.lower() in _SECRET_PARAMETERS and value:
                found.add(value)
    except ValueError:
        pass
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def _raw_query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in query.split("&"):
        key, _, value = piece.partition("=")
        pairs.append((urllib.parse.unquote(key), value))
    return pairs


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
