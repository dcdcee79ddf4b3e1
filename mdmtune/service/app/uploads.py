"""Streaming multipart: the bytes of the `file` part as they arrive, never the whole body in memory or a spool.

Starlette's `request.form()` spools a file to a temporary file before the handler runs, so the size limit and the
hash would come after the disk was already filled; this reads the body chunk by chunk with python-multipart's
low-level parser instead, and stops at the limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from mdmtune.data.jsonsafe import unstorable_text
from mdmtune.service.app.problems import Problem

MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed in a multipart body beyond the file itself (boundaries, part headers, small fields)."""


@dataclass
class _PartState:
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, bytes] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    seen_file: bool = False
    pending: list[bytes] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class FilePart:
    """The `file` part of a multipart request, read lazily: iterate `chunks()`; `filename` is set once it starts."""

    def __init__(self, request: Request, field_name: str, max_file_bytes: int) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        if content_type != b"multipart/form-data" or b"boundary" not in options:
            raise Problem(415, f"expected multipart/form-data with the upload in the field {field_name!r}", "file")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_file_bytes + MULTIPART_OVERHEAD:
            raise Problem(413, f"upload larger than the limit of {max_file_bytes} bytes", field_name)
        self.request = request
        self.field_name = field_name
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_file_bytes + MULTIPART_OVERHEAD
        self.state = _PartState()
        self.parser = MultipartParser(options[b"boundary"], self._callbacks())

    @property
    def filename(self) -> str | None:
        return self.state.filename

    def _callbacks(self) -> dict:
        s = self.state

        def on_header_field(data: bytes, start: int, end: int) -> None:
            s.header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            s.header_value += data[start:end]

        def on_header_end() -> None:
            s.headers[s.header_field.decode("latin-1").lower()] = bytes(s.header_value)
            s.header_field.clear()
            s.header_value.clear()

        def on_headers_finished() -> None:
            _, opts = parse_options_header(s.headers.get("content-disposition", b""))
            s.name = opts.get(b"name", b"").decode("utf-8", "replace")
            raw = opts.get(b"filename")
            s.filename = raw.decode("utf-8", "replace") if raw is not None else None
            reason = unstorable_text(s.filename or "")
            if reason and s.name == self.field_name:
                raise Problem(422, f"the file name {reason}", self.field_name)
            if s.name == self.field_name:
                if s.seen_file:
                    raise Problem(422, f"more than one part named {self.field_name!r}", self.field_name)
                s.seen_file = True
            else:
                s.unknown.append(s.name)

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if s.name == self.field_name:
                s.pending.append(bytes(data[start:end]))

        def on_part_end() -> None:
            s.headers = {}

        return {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        }

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes in arrival order; Problem for a body too large, malformed, or without the file."""
        received = 0
        async for block in self.request.stream():
            received += len(block)
            if received > self.max_body_bytes:
                raise Problem(413, f"upload larger than the limit of {self.max_file_bytes} bytes", self.field_name)
            try:
                self.parser.write(block)
            except MultipartParseError as error:
                raise Problem(400, f"malformed multipart body: {error}", self.field_name) from None
            pending, self.state.pending = self.state.pending, []
            for piece in pending:
                yield piece
        self.parser.finalize()
        if self.state.unknown:
            name = self.state.unknown[0]
            raise Problem(422, f"unknown form field {name!r}; the upload goes in {self.field_name!r}", name)
        if not self.state.seen_file:
            raise Problem(422, f"missing the form field {self.field_name!r} with the upload", self.field_name)
