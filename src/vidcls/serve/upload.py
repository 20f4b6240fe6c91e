"""Receive an uploaded file into a temporary folder, with its size limit enforced as it streams.

A request body is either ``multipart/form-data`` with one file part (what browsers and
``curl -F file=@clip.mp4`` send) or the file itself (``curl --data-binary @clip.mp4``). Chunks
go straight to disk: nothing is held in memory, the upload stops at the first byte over the
limit, and a client that sends nothing for ``timeout`` seconds is dropped. No web framework is
needed here, only an async iterator of body chunks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

FORM_OVERHEAD = 1 << 20  # bytes a form may carry besides the file: boundaries, small fields


class UploadError(Exception):
    """A malformed upload: the HTTP answer is 400."""


class UploadTooLarge(Exception):
    """Over the size limit: the HTTP answer is 413."""


class UploadStalled(Exception):
    """No body bytes for the timeout: the HTTP answer is 408."""


def declared_too_large(content_length: str | None, limit: int) -> bool:
    """Whether a request's ``Content-Length`` already says its body is over ``limit`` bytes
    of file (and a form's overhead): such an upload is refused before a byte is read."""
    length = (content_length or "").strip()
    return length.isdigit() and int(length) > limit + FORM_OVERHEAD


async def _until_stalled(chunks: AsyncIterator[bytes], timeout: float) -> AsyncIterator[bytes]:
    """``chunks``, raising UploadStalled when the next one takes over ``timeout`` seconds."""
    it = aiter(chunks)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(it), timeout)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise UploadStalled(f"no data received for {timeout:g} s; upload abandoned") from None
        yield chunk


def _suffix(filename: str | None) -> str:
    """A safe extension from the client's file name (FFmpeg probes better with one)."""
    match = re.search(r"\.([A-Za-z0-9]{1,8})$", filename or "")
    return f".{match.group(1).lower()}" if match else ""


def _display_name(filename: str | None) -> str:
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    return name[:200] or "upload"


class _FormReader:
    """python-multipart callbacks: the one part with a file name is written to ``folder``."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.path: Path | None = None
        self.filename: str | None = None
        self.size = 0
        self._out: BinaryIO | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._in_file = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self._in_file = {}, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" not in options:
            return  # a plain form field: ignored
        if self.path is not None:
            raise UploadError("send one file per request")
        self.filename = options[b"filename"].decode("utf-8", "replace")
        self.path = self.folder / f"upload{_suffix(self.filename)}"
        self._out = open(self.path, "wb")  # noqa: SIM115 - closed in _part_end or close()
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self.size += end - start
        if self.size > self.limit:
            raise UploadTooLarge
        self._out.write(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self.close()
            self._in_file = False

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def receive_upload(
    content_type: str,
    chunks: AsyncIterator[bytes],
    folder: Path,
    limit: int,
    filename: str | None = None,
    timeout: float | None = None,
) -> tuple[Path, str]:
    """Write the uploaded file into ``folder``; return its path and the client's file name.

    Raises UploadTooLarge past ``limit`` bytes of file (or of form around it), UploadStalled
    when no bytes arrive for ``timeout`` seconds, UploadError for a form without a file or an
    empty upload, and OSError when the file cannot be written.
    """
    if timeout is not None:
        chunks = _until_stalled(chunks, timeout)
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        path, name, size = await _receive_form(content_type, chunks, folder, limit)
    elif kind in ("application/x-www-form-urlencoded", "text/plain"):
        raise UploadError(
            "send the video as multipart/form-data (a 'file' field) or as the request body "
            "with a video/* or application/octet-stream content type"
        )
    else:
        path, name = folder / f"upload{_suffix(filename)}", filename
        size = 0
        with open(path, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge
                out.write(chunk)
    if size == 0:
        raise UploadError("the uploaded file is empty")
    return path, _display_name(name)


async def _receive_form(
    content_type: str, chunks: AsyncIterator[bytes], folder: Path, limit: int
) -> tuple[Path, str | None, int]:
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    if not params.get(b"boundary"):
        raise UploadError("multipart/form-data without a boundary")
    reader = _FormReader(folder, limit)
    try:
        parser = MultipartParser(params[b"boundary"], reader.callbacks())
    except Exception as e:  # python-multipart's FormParserError: a boundary over 256 bytes
        raise UploadError(f"malformed multipart/form-data ({e})") from None
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit + FORM_OVERHEAD:
                raise UploadTooLarge
            _parse(parser, chunk)
        _parse(parser, None)
    finally:
        reader.close()
    if reader.path is None:
        raise UploadError("no file in the form: send the video in a field named 'file'")
    return reader.path, reader.filename, reader.size


def _parse(parser, chunk: bytes | None) -> None:
    """Feed ``chunk`` to the parser (None: the end); a parse error is an UploadError, while
    the callbacks' own errors (size, disk) go through as they are."""
    try:
        if chunk is None:
            parser.finalize()
        else:
            parser.write(chunk)
    except (UploadError, UploadTooLarge, OSError):
        raise
    except Exception as e:  # python-multipart's MultipartParseError and friends
        raise UploadError(f"malformed multipart/form-data ({e})") from None
