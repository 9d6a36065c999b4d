"""What one uploaded file may produce, shared by every archive nested in it.

One budget per upload, never per archive: a nested archive draws on the same file count, the
same directory reads and the same bytes as the archive holding it, so nesting multiplies
nothing. Bytes are counted
as they are actually inflated (declared sizes are never trusted), and their total is held to
an aggregate ratio against the compressed bytes of the upload consumed so far, plus a small
allowance: a thousand small bombs are caught as surely as one big one, after a few MiB.
"""

from __future__ import annotations

from dataclasses import dataclass

from bytereview.core.settings import Settings

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UnpackLimits:
    # Files per upload, every nesting level counted.
    max_entries: int = 10_000
    # Bytes written per upload, every nesting level counted.
    max_total_bytes: int = 8 * 1024**3
    max_entry_bytes: int = 2 * 1024**3
    # Inflated bytes per compressed byte of the upload, in aggregate...
    max_ratio: float = 200.0
    # ...plus this many bytes, so small, very compressible uploads still unpack.
    ratio_allowance_bytes: int = 4 * MIB
    max_depth: int = 3
    # The central directory is streamed, never held, but read four times (for a document's
    # parts: services/ingest/packages.py; counted, checked, planned): names, extra fields
    # and comments of up to 64 KiB each could make even 20,000 records gigabytes to read.
    max_directory_bytes: int = 64 * MIB

    @property
    def max_records(self) -> int:
        """Central-directory records (folders included) an archive may hold at all."""
        return 2 * self.max_entries

    @property
    def max_records_read(self) -> int:
        """Directory records counted in unpacking one upload, every archive counted (and
        every document inside it: UploadBudget.read_directory): two archives' worth, so
        that an upload within the file limit is never refused for its folders."""
        return 2 * self.max_records

    @property
    def max_directory_bytes_read(self) -> int:
        """...and their bytes, likewise."""
        return 2 * self.max_directory_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> UnpackLimits:
        return cls(
            max_entries=settings.ingest_max_entries,
            max_total_bytes=settings.ingest_max_total_bytes,
            max_entry_bytes=settings.max_upload_bytes,
            max_ratio=settings.ingest_max_ratio,
            max_depth=settings.ingest_max_depth,
        )


class HostileArchive(Exception):
    """The whole archive is refused; the message is shown to the user."""


class UploadStopped(HostileArchive):
    """A limit of the whole upload is reached: every archive of the upload stops here."""


class UploadBudget:
    """Files and bytes left for one upload; one object for all its nesting levels."""

    def __init__(self, limits: UnpackLimits) -> None:
        self.limits = limits
        self.files = 0
        # Central-directory records and bytes read so far (read_directory).
        self.records_read = 0
        self.directory_bytes_read = 0
        self.inflated = 0
        self.compressed = 0

    @property
    def files_left(self) -> int:
        return self.limits.max_entries - self.files

    @property
    def records_left(self) -> int:
        return max(0, self.limits.max_records_read - self.records_read)

    @property
    def directory_bytes_left(self) -> int:
        return max(0, self.limits.max_directory_bytes_read - self.directory_bytes_read)

    def read_directory(self, records: int, size: int) -> None:
        """Count a walk of an archive's directory: `records` records of a `size`-byte one.

        Each walk costs ~5 us a record in Python whatever the records are, and folders cost
        no file, so the file budget does not bound them; the limits of one archive bound one
        archive only. 5,000 nested archives of 20,000 folder records each (1.6 MB apiece,
        40 KB deflated, 8 GB in all) were 100 million records walked four times: ~40
        minutes of a worker's CPU for a 200 MB upload, past the worker's maximum run time,
        so it was redelivered and read again. Walks read at most what is left
        (planning.open_archive, packages.document_type), and once nothing is, no archive of
        the upload is read: this only adds."""
        self.records_read += records
        self.directory_bytes_read += size

    def reserve_files(self, count: int) -> None:
        """Claim `count` files for one archive; HostileArchive (that archive only) if they
        do not fit in what is left."""
        if count > self.files_left:
            if self.files == 0:
                raise HostileArchive(
                    f"the archive holds {count} files; the limit is {self.limits.max_entries}"
                )
            raise HostileArchive(
                f"the archive holds {count} files; only {self.files_left} more fit in the "
                f"upload's limit of {self.limits.max_entries}"
            )
        self.files += count

    def consume(self, compressed: int) -> None:
        """Compressed bytes of the upload itself about to be inflated (top level only)."""
        self.compressed += compressed

    def charge(self, inflated: int) -> None:
        """Bytes just inflated, at any level; UploadStopped once a limit is passed."""
        self.inflated += inflated
        limits = self.limits
        if self.inflated > limits.max_total_bytes:
            raise UploadStopped(f"the upload inflates beyond {limits.max_total_bytes} bytes")
        if self.inflated > limits.max_ratio * self.compressed + limits.ratio_allowance_bytes:
            raise UploadStopped(
                f"the upload inflates to more than {limits.max_ratio:g} times its compressed "
                f"size ({self.inflated} bytes from {self.compressed}): a zip bomb"
            )
