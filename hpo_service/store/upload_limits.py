"""Bounds on uploads: bytes, columns and rows checked while the bytes are read, the id pattern,
and short column lists for messages.

Parsing a CSV with a million columns took pandas minutes and a gigabyte before any check ran, so
the header's fields and the data lines are counted on the raw bytes as they arrive, and reading
stops at the first bound crossed. Counting follows CSV quoting (a quoted comma or line break is
data, a doubled quote mark is an escaped one); the parsed frame is checked again afterwards, so
a file this count misjudges (lone carriage returns as line ends) still meets the same bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from hpo_service.messages import short_names

if TYPE_CHECKING:
    from hpo_service.config import Settings

#: Small reads so that a bound is noticed soon after it is crossed.
CHUNK_BYTES = 1 << 16
#: An upload id as the service makes it (``secrets.token_hex(8)``); no other text names an upload.
#: Longest column name an upload may have: the API's column form fields take 200 characters.
MAX_NAME_CHARS = 200


class UploadError(ValueError):
    """An upload or dataset request that cannot be served; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_columns: int
    max_rows: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        return cls(
            max_bytes=int(settings.max_upload_mb * (1 << 20)),
            max_columns=settings.max_upload_columns,
            max_rows=settings.max_upload_rows,
        )

    def too_many_columns(self) -> UploadError:
        return UploadError(
            f"file: more than {self.max_columns} columns (HPO_MAX_UPLOAD_COLUMNS)", 413
        )

    def too_many_rows(self) -> UploadError:
        return UploadError(f"file: more than {self.max_rows} data rows (HPO_MAX_UPLOAD_ROWS)", 413)

    def too_large(self) -> UploadError:
        mb = self.max_bytes / (1 << 20)
        return UploadError(f"file: larger than the {mb:g} MB limit (HPO_MAX_UPLOAD_MB)", 413)


class CsvShape:
    """Header fields and data lines of CSV bytes fed in chunks of any size."""

    def __init__(self) -> None:
        self.in_quotes = False
        self.header_done = False
        self.columns = 1
        self.rows = 0

    def feed(self, chunk: bytes) -> None:
        """Count the separators outside quotes; every quote mark toggles the quoted state."""
        for index, segment in enumerate(chunk.split(b'"')):
            if index:
                self.in_quotes = not self.in_quotes
            if segment and not self.in_quotes:
                self._count(segment)

    def _count(self, segment: bytes) -> None:
        if not self.header_done:
            end = segment.find(b"\n")
            self.columns += segment.count(b",", 0, None if end < 0 else end)
            if end < 0:
                return
            self.header_done = True
            segment = segment[end + 1 :]
        self.rows += segment.count(b"\n")


def read_limited(stream: IO[bytes], limits: UploadLimits) -> bytes:
    """The stream's bytes; past a bound on bytes, columns or rows, a 413 without reading on."""
    buffer = bytearray()
    shape = CsvShape()
    while chunk := stream.read(CHUNK_BYTES):
        buffer.extend(chunk)
        if len(buffer) > limits.max_bytes:
            raise limits.too_large()
        shape.feed(chunk)
        if shape.columns > limits.max_columns:
            raise limits.too_many_columns()
        if shape.rows > limits.max_rows:
            raise limits.too_many_rows()
    return bytes(buffer)


def check_shape(columns: Sequence[object], rows: int, limits: UploadLimits) -> None:
    """The parsed CSV within the same bounds (a backstop for line ends the byte count misses),
    and no column name too long to be named in a mapping field."""
    if len(columns) > limits.max_columns:
        raise limits.too_many_columns()
    if rows > limits.max_rows:
        raise limits.too_many_rows()
    long = [str(c) for c in columns if len(str(c)) > MAX_NAME_CHARS]
    if long:
        raise UploadError(
            f"file: {len(long)} column name(s) longer than {MAX_NAME_CHARS} characters: "
            f"{short_names(long, limit=3)}"
        )
