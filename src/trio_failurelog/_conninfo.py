"""PostgreSQL URLs as messages may show them: never with the password."""

from __future__ import annotations

import re
import urllib.parse

__all__ = [
    "check_url",
    "redact_keywords",
    "redact_url",
    "scrub",
    "url_secrets",
    "without_password",
]

# libpq URL query parameters that carry secrets.
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def _split(url: str) -> tuple[str, str | None, str, str]:
    """``url`` cut into scheme, userinfo (or None), hosts and path, query.

    Not :func:`urllib.parse.urlsplit`: libpq takes everything up to the first
    ``@`` (when it comes before any ``/``) as ``user[:password]``, so a password
    may hold ``#`` or ``?`` as they are, where urlsplit would see a fragment or a
    query and miss the password. A password holding an unencoded ``@`` is cut
    short by libpq (:func:`check_url` refuses such URLs); here the userinfo runs
    to the *last* ``@`` before the path, so that all of the password is hidden.
    The query is what follows the first ``?`` after the userinfo. Raises
    :exc:`ValueError` for text without ``://``.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError("not a URL")
    end = len(rest)
    for index, char in enumerate(rest):
        if char in "@/":
            end = index
            break
    userinfo: str | None = None
    if end < len(rest) and rest[end] == "@":
        slash = rest.find("/", end)
        authority = rest if slash < 0 else rest[:slash]
        userinfo, _, host = authority.rpartition("@")
        rest = host + ("" if slash < 0 else rest[slash:])
    elif "@" in rest:
        # Malformed for libpq (a "/" in the password, say), but plainly meant
        # as user:password@host: treated as userinfo, so that it is hidden.
        userinfo, _, rest = rest.rpartition("@")
    base, _, query = rest.partition("?")
    return scheme, userinfo, base, query


def check_url(url: str) -> None:
    """Refuse a URL whose userinfo holds an unencoded ``@``.

    libpq ends the password at the first ``@`` and takes the rest for the host,
    so every message about it (``failed to resolve host 'tail@host'``) would
    show the end of the password. Raises :exc:`ValueError` naming ``database``
    and saying to write ``@`` as ``%40``; the message shows the URL with
    nothing between the user name and the last ``@``. Never blocks.
    """
    _scheme, separator, rest = url.partition("://")
    if not separator:
        return
    slash = rest.find("/")
    authority = rest if slash < 0 else rest[:slash]
    if authority.count("@") > 1:
        raise ValueError(
            f"database: {redact_url(url)!r} has more than one '@' before its host: "
            "write an '@' in the user name or password as %40"
        )


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``key=value`` pieces as written (values not decoded), keys decoded."""
    pairs = []
    for piece in query.split("&"):
        key, _, value = piece.partition("=")
        pairs.append((urllib.parse.unquote(key), value))
    return pairs


def redact_url(url: str) -> str:
    """``url`` with any password (in the userinfo or the query) replaced by ``***``.

    Never raises: text that does not parse as a URL is reduced to its scheme.
    """
    try:
        scheme, userinfo, base, query = _split(url)
    except ValueError:
        return url.partition(":")[0] + "://***"
    shown = f"{scheme}://"
    if userinfo is not None:
        user, colon, _password = userinfo.partition(":")
        shown += f"{user}{':***' if colon else ''}@"
    shown += base
    if query:
        pieces = []
        for piece in query.split("&"):
            key, equals, _value = piece.partition("=")
            secret = urllib.parse.unquote(key).lower() in _SECRET_PARAMETERS
            pieces.append(f"{key}{equals}***" if secret and equals else piece)
        shown += "?" + "&".join(pieces)
    return shown


#: ``password=value`` in a libpq ``key=value`` string: the value quoted or bare.
_KEYWORD_SECRET = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)", re.IGNORECASE)


def redact_keywords(text: str) -> str:
    """``text`` with the value of any ``password=`` or ``sslpassword=`` (libpq's
    ``key=value`` form, quoted or not) replaced by ``***``. Never raises."""
    return _KEYWORD_SECRET.sub(r"\1***", text)


def without_password(url: str) -> tuple[str, str | None]:
    """``url`` with no password in it at all, and the password (decoded) or None.

    libpq reads the password from ``PGPASSWORD`` or ``~/.pgpass`` when the URL
    has none: a command printed with the first, and run with the second in the
    environment, works without showing it. A password in the query
    (``?password=``) is taken out the same way. Never raises: text that does
    not parse as a URL comes back as it is, with None.
    """
    try:
        scheme, userinfo, base, query = _split(url)
    except ValueError:
        return url, None
    password: str | None = None
    shown = f"{scheme}://"
    if userinfo is not None:
        user, colon, secret = userinfo.partition(":")
        if colon:
            password = urllib.parse.unquote(secret)
        shown += f"{user}@"
    shown += base
    if query:
        kept = []
        for piece in query.split("&"):
            key, _, value = piece.partition("=")
            if urllib.parse.unquote(key).lower() == "password":
                password = urllib.parse.unquote(value)
            else:
                kept.append(piece)
        if kept:
            shown += "?" + "&".join(kept)
    return shown, password


def url_secrets(url: str) -> tuple[str, ...]:
    """Every secret ``url`` carries, as written and as decoded, longest first.

    Messages from libpq or psycopg may quote a connection string back (a
    malformed one, say); :func:`scrub` removes these from any text.
    """
    found: set[str] = set()
    try:
        _scheme, userinfo, _base, query = _split(url)
    except ValueError:
        return ()
    if userinfo is not None:
        _user, colon, password = userinfo.partition(":")
        if colon and password:
            found.update({password, urllib.parse.unquote(password)})
            # libpq reads only up to the first "@" as the password and the rest
            # as a host name that its messages quote: each piece is a secret.
            found.update(piece for piece in password.split("@") if piece)
    for key, value in _query_pairs(query):
        if key.lower() in _SECRET_PARAMETERS and value:
            found.update({value, urllib.parse.unquote_plus(value), urllib.parse.unquote(value)})
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
