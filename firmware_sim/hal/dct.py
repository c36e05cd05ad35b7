"""Device Configuration Table (DCT) storage with Device OS's layout and atomic writes.

How this works
--------------
The image is ``application_dct_t`` from Device OS (``platform/MCU/rtl872x/inc/dct.h``): 8391 bytes,
created filled with 0xFF so unset fields read back as 0xFF (on Gen3/P2 it is the LittleFS file
``/sys/dct.bin``). Offsets below are pinned to the static asserts of that header.

A write never modifies the committed image in place. It is performed as a sequence of *steps*,
each announced to an optional fault hook before it happens:

``begin`` -> ``modify:0`` ... ``modify:n-1`` (one per byte, into a shadow copy) -> the backend's
own steps -> ``done``.

The file backend's steps are those of a crash-safe replace: ``persist:k`` (write chunk *k* of a
temporary file ``dct.bin.tmp``), ``sync`` (fsync it: its data is on the disk), ``commit``
(``os.replace`` over ``dct.bin``), ``sync-dir`` (fsync the directory: the rename is on the
disk). Until ``sync`` the new bytes may sit in the page cache and be lost at a power cut; until
``sync-dir`` the rename may be lost. So at any cut the file names either the old image or the
complete new one, and once ``done`` is announced the new one survives. The memory backend swaps
a reference (``commit``). A fault hook that raises :class:`PowerCut` at any step leaves the
committed image either entirely old or entirely new. The Dct object that saw the power cut is
dead; "rebooting" means opening a new Dct on the same backend, as the device re-reads flash.

The image is kept in 128-byte pages: a page never written is one shared, immutable page of
0xFF, and a write replaces only the pages it touches (copy on write, so the committed image of a
memory backend and the device's view share every page). An idle device therefore holds only the
few pages it wrote - its id, claim code, server settings - not a private 8 KiB copy, twice.
A written page is also looked up by content among the pages written lately (a small
least-recently-used table), so a page many devices write alike - one cloud's server key and
address - is held once for all of them.
Without a fault hook a write skips announcing its per-byte steps (nobody listens).

The file backend does its I/O through a :class:`DctFiles` seam (:class:`OsDctFiles`: the real
system calls), so a test can put a page-cache model under it and cut the power between any two
operations (``tests/unit/hal/test_dct_power_cut.py``).

A DCT file whose size is not 8391 bytes is refused with :class:`DctSizeError` and never
overwritten; a directory (or anything not a regular file) where ``dct.bin`` or its temporary
file belongs is a :class:`~firmware_sim.kernel.errors.ConfigurationError` naming the path.
"""

from __future__ import annotations

import os
import stat
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..kernel.errors import ConfigurationError, PowerCut, UsageError
from ..kernel.private_files import make_private_dir, open_private

DCT_SIZE = 8391
ERASED = 0xFF


@dataclass(frozen=True, slots=True)
class DctField:
    name: str
    offset: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


#: Every field of ``application_dct_t`` (Device OS 6.2, identical on rtl872x and nRF52840).
DCT_LAYOUT: tuple[DctField, ...] = (
    DctField("system_flags", 0, 32),
    DctField("version", 32, 2),
    DctField("device_private_key", 34, 1216),
    DctField("device_public_key", 1250, 384),
    DctField("ip_config", 1634, 24),
    DctField("unused", 1658, 95),
    DctField("ota_update_flag", 1753, 1),
    DctField("feature_flags", 1754, 4),
    DctField("country_code", 1758, 4),
    DctField("claim_code", 1762, 63),
    DctField("claimed", 1825, 1),
    DctField("ssid_prefix", 1826, 26),
    DctField("device_code", 1852, 6),
    DctField("version_string", 1858, 32),
    DctField("dns_resolve", 1890, 128),
    DctField("reserved1", 2018, 64),
    DctField("server_public_key", 2082, 768),
    DctField("padding", 2850, 2),
    DctField("flash_modules", 2852, 100),
    DctField("product_store", 2952, 24),
    DctField("antenna_selection", 2976, 1),
    DctField("cloud_transport", 2977, 1),
    DctField("alt_device_public_key", 2978, 128),
    DctField("alt_device_private_key", 3106, 192),
    DctField("alt_server_public_key", 3298, 192),
    DctField("alt_server_address", 3490, 128),
    DctField("device_id", 3618, 12),
    DctField("radio_flags", 3630, 1),
    DctField("mode_button_mirror", 3631, 32),
    DctField("led_mirror", 3663, 96),
    DctField("led_theme", 3759, 64),
    DctField("eap_config", 3823, 4296),
    DctField("device_secret", 8119, 15),
    DctField("setup_done", 8134, 1),
    DctField("ncp_id", 8135, 4),
    DctField("power_config", 8139, 32),
    DctField("radio_antenna", 8171, 1),
    DctField("reserved2", 8172, 219),
)
FIELDS: dict[str, DctField] = {f.name: f for f in DCT_LAYOUT}

#: ``platform_system_flags_t.StartupMode_SysFlag`` inside ``system_flags`` (1 = listening).
STARTUP_MODE_FLAG_OFFSET = 18

FaultHook = Callable[[str], None]


class DctSizeError(ConfigurationError):
    """A DCT file exists but has the wrong size; it is left untouched."""


def _no_fault(step: str) -> None:
    return None


class DctBackend(Protocol):
    """Where the committed image lives."""

    def load(self) -> bytes | None:
        """The committed image, or None if nothing was ever written."""

    def commit(self, image: bytes, fault: FaultHook) -> None:
        """Atomically replace the committed image, announcing each step to ``fault``."""

    def describe(self) -> str: ...


PAGE_SIZE = 128
_PAGE_COUNT = (DCT_SIZE + PAGE_SIZE - 1) // PAGE_SIZE
#: the erased page of each index (the last one is shorter), shared by every image
_ERASED_PAGES: tuple[bytes, ...] = tuple(
    bytes([ERASED]) * (min(DCT_SIZE, (i + 1) * PAGE_SIZE) - i * PAGE_SIZE)
    for i in range(_PAGE_COUNT))


class Pages:
    """The written pages of an image by index (a page not in it reads as 0xFF). Never changed
    once built: a write makes a new one. Compact, as a fleet holds one per device: the indexes
    as one bytes object and the pages as a tuple (~190 bytes for the 7 pages of an idle fleet
    device, where a dict takes 350)."""

    __slots__ = ("_indexes", "_pages")

    def __init__(self, written: dict[int, bytes] | None = None) -> None:
        items = sorted(written.items()) if written else []
        self._indexes = bytes(index for index, _ in items)
        self._pages = tuple(page for _, page in items)

    @classmethod
    def of(cls, indexes: bytes, pages: tuple[bytes, ...]) -> Pages:
        """A page map from its parts: ``indexes`` sorted, one page each, none erased."""
        made = cls.__new__(cls)
        made._indexes = indexes
        made._pages = pages
        return made

    def get(self, index: int, default: bytes) -> bytes:
        at = self._indexes.find(index)
        return default if at < 0 else self._pages[at]

    def __len__(self) -> int:
        return len(self._pages)


_NO_PAGES = Pages()


#: Recently written pages by content (least recently used first); see :func:`_shared_page`.
_RECENT_PAGES: dict[bytes, bytes] = {}
_RECENT_PAGES_MAX = 256


def _shared_page(page: bytes) -> bytes:
    """``page``, or an equal page already held (pages are immutable, so any equal one does):
    the devices of a fleet write the same server settings, and keep one copy of them."""
    recent = _RECENT_PAGES
    held = recent.pop(page, None)
    if held is None:
        held = page
        if len(recent) >= _RECENT_PAGES_MAX:
            del recent[next(iter(recent))]
    recent[held] = held
    return held


def _pages_of(image: bytes) -> Pages:
    """The written pages of a full image (erased ones left out)."""
    pages: dict[int, bytes] = {}
    for index, erased in enumerate(_ERASED_PAGES):
        page = image[index * PAGE_SIZE:index * PAGE_SIZE + len(erased)]
        if page != erased:
            pages[index] = _shared_page(bytes(page))
    return Pages(pages)


def _join(pages: Pages) -> bytes:
    if not pages:
        return b"".join(_ERASED_PAGES)
    get = pages.get
    return b"".join([get(index, erased) for index, erased in enumerate(_ERASED_PAGES)])


def _read(pages: Pages, offset: int, size: int) -> bytes:
    first, last = offset // PAGE_SIZE, (offset + size - 1) // PAGE_SIZE
    start = offset - first * PAGE_SIZE
    if first == last or size == 0:
        return pages.get(first, _ERASED_PAGES[first])[start:start + size]
    chunk = b"".join([pages.get(i, _ERASED_PAGES[i]) for i in range(first, last + 1)])
    return chunk[start:start + size]


def _written(pages: Pages, offset: int, data: bytes) -> Pages:
    """A new page map: ``pages`` with ``data`` written at ``offset``. The sorted indexes and the
    pages are spliced in place of a rebuild (a fleet device writes its DCT ~9 times when it is
    made): a page that becomes erased again is dropped, a new one inserted in index order."""
    indexes, held = pages._indexes, pages._pages
    end = offset + len(data)
    for index in range(offset // PAGE_SIZE, (end - 1) // PAGE_SIZE + 1):
        base = index * PAGE_SIZE
        erased = _ERASED_PAGES[index]
        lo, hi = max(offset, base), min(end, base + len(erased))
        at = indexes.find(index)
        if lo == base and hi == base + len(erased):  # the whole page
            page = data[lo - offset:hi - offset]
        else:
            edited = bytearray(erased if at < 0 else held[at])
            edited[lo - base:hi - base] = data[lo - offset:hi - offset]
            page = bytes(edited)
        if page == erased:
            if at >= 0:
                indexes = indexes[:at] + indexes[at + 1:]
                held = held[:at] + held[at + 1:]
        elif at >= 0:
            held = (*held[:at], _shared_page(page), *held[at + 1:])
        else:
            at = bisect_left(indexes, index)
            indexes = indexes[:at] + bytes((index,)) + indexes[at:]
            held = (*held[:at], _shared_page(page), *held[at:])
    return Pages.of(indexes, held)


class MemoryDctBackend:
    """Committed image held in memory (survives a simulated reboot, not the process)."""

    __slots__ = ("_pages",)

    def __init__(self, image: bytes | None = None) -> None:
        if image is not None and len(image) != DCT_SIZE:
            raise DctSizeError(f"DCT image has {len(image)} bytes, expected {DCT_SIZE}")
        self._pages: Pages | None = None if image is None else _pages_of(image)

    def load(self) -> bytes | None:
        return None if self._pages is None else _join(self._pages)

    def load_pages(self) -> Pages | None:
        """The committed image as pages (shared with the caller: never change them)."""
        return self._pages

    def commit(self, image: bytes, fault: FaultHook) -> None:
        self.commit_pages(_pages_of(image), fault)

    def commit_pages(self, pages: Pages, fault: FaultHook) -> None:
        fault("commit")
        self._pages = pages

    def describe(self) -> str:
        return "memory"


class DctFile(Protocol):
    """A file open for writing (created or truncated)."""

    def write(self, data: bytes) -> None: ...

    def sync(self) -> None:
        """fsync: the data written so far is on the disk."""

    def close(self) -> None: ...


class DctFiles(Protocol):
    """The file operations of :class:`FileDctBackend` (real ones: :class:`OsDctFiles`)."""

    def kind(self, path: Path) -> str:
        """``"missing"``, ``"file"`` (a regular file) or ``"other"`` (a directory, ...)."""

    def read(self, path: Path) -> bytes: ...

    def remove(self, path: Path) -> None: ...

    def create(self, path: Path) -> DctFile: ...

    def replace(self, source: Path, target: Path) -> None: ...

    def sync_dir(self, directory: Path) -> None:
        """fsync a directory: the names created, renamed or removed in it are on the disk."""


class _OsFile:
    def __init__(self, path: Path) -> None:
        self._fd = open_private(path)  # the DCT holds the device's private key

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


class OsDctFiles:
    """The real system calls."""

    def kind(self, path: Path) -> str:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return "missing"
        return "file" if stat.S_ISREG(mode) else "other"

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def remove(self, path: Path) -> None:
        path.unlink()

    def create(self, path: Path) -> DctFile:
        return _OsFile(path)

    def replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def sync_dir(self, directory: Path) -> None:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return  # a platform without directory descriptors (the rename is its best)
        try:
            os.fsync(fd)
        except OSError:
            pass  # not supported for directories here
        finally:
            os.close(fd)


class FileDctBackend:
    """Committed image in a file (``dct.bin``), replaced crash-safely on every write."""

    CHUNK = 2048

    def __init__(self, path: str | Path, files: DctFiles | None = None) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self.files: DctFiles = files if files is not None else OsDctFiles()

    def _not_a_file(self, path: Path, what: str) -> ConfigurationError:
        return ConfigurationError(f"{path} is not a regular file (a directory?); {what} - "
                                  "move it away to continue")

    def load(self) -> bytes | None:
        files = self.files
        try:
            tmp_kind = files.kind(self._tmp)
            if tmp_kind == "other":
                raise self._not_a_file(self._tmp, "it is where the DCT's temporary file goes")
            if tmp_kind == "file":
                # A write was cut before its commit: the temporary file is garbage.
                files.remove(self._tmp)
            kind = files.kind(self.path)
            if kind == "missing":
                return None
            if kind == "other":
                raise self._not_a_file(self.path, "it is where the DCT file goes")
            data = files.read(self.path)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if len(data) != DCT_SIZE:
            raise DctSizeError(
                f"{self.path} has {len(data)} bytes, expected {DCT_SIZE}: "
                "refusing to use it (the file is left untouched)")
        return data

    def commit(self, image: bytes, fault: FaultHook) -> None:
        files = self.files
        try:
            make_private_dir(self.path.parent)
            if files.kind(self._tmp) == "other":
                raise self._not_a_file(self._tmp, "it is where the DCT's temporary file goes")
            tmp = files.create(self._tmp)
            try:
                for index, start in enumerate(range(0, len(image), self.CHUNK)):
                    fault(f"persist:{index}")
                    tmp.write(image[start:start + self.CHUNK])
                fault("sync")
                tmp.sync()
            finally:
                tmp.close()
            fault("commit")
            files.replace(self._tmp, self.path)
            fault("sync-dir")
            files.sync_dir(self.path.parent)
        except OSError as exc:
            raise ConfigurationError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def describe(self) -> str:
        return str(self.path)


class Dct:
    """The DCT image of one device, read from and written through a backend."""

    __slots__ = ("_dead", "_pages", "backend", "fault_hook", "writes")

    def __init__(self, backend: DctBackend | None = None, *,
                 fault_hook: FaultHook | None = None) -> None:
        self.backend: DctBackend = backend if backend is not None else MemoryDctBackend()
        self.fault_hook: FaultHook = fault_hook or _no_fault
        if isinstance(self.backend, MemoryDctBackend):
            self._pages: Pages = self.backend.load_pages() or _NO_PAGES
        else:
            loaded = self.backend.load()
            self._pages = _NO_PAGES if loaded is None else _pages_of(loaded)
        self._dead = False
        self.writes = 0

    @property
    def size(self) -> int:
        return DCT_SIZE

    def _check_alive(self) -> None:
        if self._dead:
            raise PowerCut("this DCT lost power mid-write; reopen it (reboot) to continue")

    def _check_range(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > DCT_SIZE:
            raise UsageError(f"DCT access [{offset}, {offset + size}) outside 0..{DCT_SIZE}")

    def read(self, offset: int, size: int) -> bytes:
        self._check_alive()
        self._check_range(offset, size)
        return _read(self._pages, offset, size)

    def read_field(self, name: str) -> bytes:
        field = FIELDS[name]
        return self.read(field.offset, field.size)

    def image(self) -> bytes:
        self._check_alive()
        return _join(self._pages)

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` atomically. Returns 0 (``dct_write_app_data``)."""
        self._check_alive()
        self._check_range(offset, len(data))
        fault = self.fault_hook
        backend = self.backend
        try:
            fault("begin")
            if fault is not _no_fault:
                for index in range(len(data)):
                    fault(f"modify:{index}")
            pages = _written(self._pages, offset, bytes(data)) if data else self._pages
            if isinstance(backend, MemoryDctBackend):
                backend.commit_pages(pages, fault)
            else:
                backend.commit(_join(pages), fault)
            self._pages = pages
            self.writes += 1
            fault("done")
        except PowerCut:
            self._dead = True
            raise
        return 0

    def write_field(self, name: str, data: bytes) -> int:
        field = FIELDS[name]
        if len(data) > field.size:
            raise UsageError(f"{len(data)} bytes do not fit DCT field {name} ({field.size})")
        return self.write(field.offset, data)
