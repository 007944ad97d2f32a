"""PostgreSQL URLs as messages may show them: never with the password."""

from __future__ import annotations

import urllib.parse

__all__ = ["redact_url"]

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
