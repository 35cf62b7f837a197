"""Credentials out of URLs and text: what the store writes or prints, and every error.

Stdlib only and below everything else in isolator (errors use it), so that no message, record
or progress line carries an index's ``user:token@`` or a signed URL's secret query values.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SECRET_KEY = re.compile(
    r"token|secret|passw|pwd|auth|key|sig|credential|session|access|private", re.I)
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """*url* without credentials: userinfo (``user:token@``) dropped, the values of
    secret-looking query parameters (``token=``, ``X-Amz-Signature=``, ...) made ``***``.
    A path, or anything that is no URL, is returned as it is.

    Every URL the store writes (metadata, lock files, the audit log) or prints (progress,
    errors) goes through here: credentials are given again when needed (``index_url=`` on
    :meth:`PluginStore.upgrade`, or uv's netrc), never read back from disk.
    """
    if not isinstance(url, str) or not _SCHEME_RE.match(url) or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_IN_TEXT.sub("<url>", url) if "@" in url else url
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{key}=***" if sep and _SECRET_KEY.search(key) else f"{key}{sep}{value}"
        for key, sep, value in (item.partition("=") for item in parts.query.split("&"))
    ) if parts.query else ""
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing to take out: as written (urlunsplit would drop an empty '//')
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """*text* (an error, a line of a tool's output) with every URL in it redacted."""
    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        core = url.rstrip(".,;:)]}")  # the sentence's punctuation, not the URL's
        return redact_url(core) + url[len(core):]

    return _URL_IN_TEXT.sub(one, text)
