"""Video files by URL: fetched to a temporary file first, so any container and any web server
work (an MP4 with its index at the end cannot be streamed from a server without range
requests), within a size limit and with timeouts."""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from pathlib import Path

from ..errors import VidclsError
from ..files import MB

FILE_SCHEMES = ("http", "https", "file")  # URLs of video files (live streams: `vidcls live`)
TIMEOUT = 30.0  # seconds to connect, and to wait for each chunk
PLAYLISTS = ("mpegurl", "dash+xml")  # content types of live playlists (HLS, DASH)


def is_url(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` is a URL (``scheme://...``) rather than a path."""
    return "://" in os.fspath(spec)


def max_download() -> int:
    """The largest video fetched by URL, bytes (``VIDCLS_MAX_DOWNLOAD_MB``, default 4096)."""
    try:
        return int(float(os.environ.get("VIDCLS_MAX_DOWNLOAD_MB", "4096")) * MB)
    except ValueError:
        raise VidclsError("VIDCLS_MAX_DOWNLOAD_MB must be a number of megabytes") from None


def local_path(url: str) -> str | None:
    """The path of a ``file://`` URL; None for other URLs."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.unquote(parts.path) if parts.scheme.lower() == "file" else None


def download(url: str, folder: str | os.PathLike) -> Path:
    """Fetch the video at ``url`` into ``folder``; VidclsError naming the URL on failure."""
    name = Path(urllib.parse.urlsplit(url).path).name or "video"
    target = Path(folder) / f"download{Path(name).suffix[:12]}"
    limit = max_download()
    from urllib.error import HTTPError, URLError  # loaded only when a URL is fetched
    from urllib.request import Request, urlopen

    request = Request(url, headers={"User-Agent": "vidcls"})
    try:
        with urlopen(request, timeout=TIMEOUT) as r, open(target, "wb") as out:
            size = 0
            while chunk := r.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise VidclsError(
                        f"larger than the download limit of {limit / MB:.0f} MB "
                        "(VIDCLS_MAX_DOWNLOAD_MB)",
                        url,
                    )
                out.write(chunk)
    except HTTPError as e:
        raise VidclsError(f"cannot download (HTTP {e.code} {e.reason})", url) from None
    except (URLError, OSError) as e:
        why = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise VidclsError(f"cannot download ({why})", url) from None
    if size == 0:
        raise VidclsError("the download is empty", url)
    return target


def is_file_url(url: str) -> bool:
    """Whether an http(s) URL serves a file (a length, not a playlist) rather than a live
    stream; asked with a request whose body is not read."""
    from urllib.error import URLError  # loaded only when a URL is asked about
    from urllib.request import Request, urlopen

    request = Request(url, headers={"User-Agent": "vidcls"})
    try:
        with urlopen(request, timeout=TIMEOUT) as r:
            kind = (r.headers.get("Content-Type") or "").lower()
            return r.headers.get("Content-Length") is not None and not any(
                p in kind for p in PLAYLISTS
            )
    except (URLError, OSError, ValueError):
        return False  # unreachable now: a stream to retry, reported as such


def temporary_folder() -> tempfile.TemporaryDirectory:
    """A folder for one download, removed when closed (or at exit)."""
    return tempfile.TemporaryDirectory(prefix="vidcls-url-")
