"""Power cuts during a DCT write, with the page cache modelled (issue 14, finding 7).

The old test cut power at every step but checked only the 63-byte claim code, with real files
whose writes the kernel had long flushed: it still passed with ``dct.bin`` written in place or
without fsync. Here the file backend runs on :class:`PageCacheFiles`, a model of a POSIX file
system after a crash: file data reaches the disk only when fsync'ed, directory entries (create,
rename, unlink) only when the directory is fsync'ed - *or* at any moment before, because the
kernel writes dirty pages back when it likes, in order. Power is cut between every two
operations of a write, every write-back the disk may have seen by then is tried, and after each
"reboot" the *whole* image must be the old one or the new one - the new one whenever the write
had returned. The test proves it can fail: the same check must find faults in an in-place
writer, in a writer that skips fsync, and in one that skips the directory fsync.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from firmware_sim.hal import DCT_SIZE, ClaimCodeHal, Dct, DctFile, FileDctBackend
from firmware_sim.kernel.errors import ConfigurationError, PowerCut

PATH = Path("/dev-storage/dct.bin")
CODE63 = "rCFr2KAJNgzJ2rR3Jm1ZoUd7G4Sr3ak7MRHdWrM274eYzInP1+psZ0fP2qNehlj"

Op = tuple[str, int, bytes]  # ("truncate", 0, b"") or ("write", offset, data)


def _apply(data: bytes, ops: list[Op]) -> bytes:
    for kind, offset, chunk in ops:
        if kind == "truncate":
            data = b""
        else:
            data = data[:offset].ljust(offset, b"\0") + chunk + data[offset + len(chunk):]
    return data


@dataclass
class Inode:
    durable: bytes = b""
    pending: list[Op] = field(default_factory=list)

    @property
    def cached(self) -> bytes:
        return _apply(self.durable, self.pending)


@dataclass
class PageCacheFiles:
    """A file system whose unsynced writes a power cut may lose (module header)."""

    inodes: list[Inode] = field(default_factory=list)
    #: the directory: durable entries, and operations not yet fsync'ed
    names: dict[Path, int] = field(default_factory=dict)
    dir_pending: list[tuple[str, Path, Path | int]] = field(default_factory=list)
    #: cut the power when this many operations have run (None: never)
    cut_at: int | None = None
    ops: int = 0
    #: mutation switches (a broken file system call)
    fsync_works: bool = True
    dir_fsync_works: bool = True

    def _tick(self) -> None:
        if self.cut_at is not None and self.ops >= self.cut_at:
            raise PowerCut(f"power cut before file operation {self.ops}")
        self.ops += 1

    def _cached_names(self) -> dict[Path, int]:
        names = dict(self.names)
        for kind, a, b in self.dir_pending:
            if kind == "link":
                assert isinstance(b, int)
                names[a] = b
            elif kind == "unlink":
                names.pop(a, None)
            else:
                assert isinstance(b, Path)
                names[b] = names.pop(a)
        return names

    # -- DctFiles ------------------------------------------------------------------------------

    def kind(self, path: Path) -> str:
        return "file" if path in self._cached_names() else "missing"

    def read(self, path: Path) -> bytes:
        return self.inodes[self._cached_names()[path]].cached

    def remove(self, path: Path) -> None:
        self._tick()
        self.dir_pending.append(("unlink", path, path))

    def create(self, path: Path) -> DctFile:
        self._tick()
        number = self._cached_names().get(path)
        if number is None:
            self.inodes.append(Inode())
            number = len(self.inodes) - 1
            self.dir_pending.append(("link", path, number))
        else:
            self.inodes[number].pending.append(("truncate", 0, b""))
        return _ModelFile(self, number)

    def replace(self, source: Path, target: Path) -> None:
        self._tick()
        self.dir_pending.append(("rename", source, target))

    def sync_dir(self, directory: Path) -> None:
        self._tick()
        if self.dir_fsync_works:
            self.names = self._cached_names()
            self.dir_pending = []

    # -- the crash -----------------------------------------------------------------------------

    def sync_everything(self) -> None:
        for inode in self.inodes:
            inode.durable, inode.pending = inode.cached, []
        self.names, self.dir_pending = self._cached_names(), []

    def crashes(self) -> Iterator[PageCacheFiles]:
        """Every state the disk may be in after a power cut now: each dirty file and the
        directory keep an in-order prefix of their unsynced operations."""
        dirty = [i for i, inode in enumerate(self.inodes) if inode.pending]
        for keep_dir in range(len(self.dir_pending) + 1):
            for keeps in itertools.product(*(range(len(self.inodes[i].pending) + 1)
                                             for i in dirty)):
                after = copy.deepcopy(self)
                after.cut_at, after.ops = None, 0
                after.names = PageCacheFiles(names=self.names,
                                             dir_pending=self.dir_pending[:keep_dir]
                                             )._cached_names()
                after.dir_pending = []
                for number, keep in zip(dirty, keeps, strict=True):
                    inode = after.inodes[number]
                    inode.durable, inode.pending = _apply(inode.durable,
                                                          inode.pending[:keep]), []
                yield after


class _ModelFile:
    def __init__(self, files: PageCacheFiles, number: int) -> None:
        self.files, self.number, self.offset = files, number, 0

    def write(self, data: bytes) -> None:
        self.files._tick()
        self.files.inodes[self.number].pending.append(("write", self.offset, bytes(data)))
        self.offset += len(data)

    def sync(self) -> None:
        self.files._tick()
        if self.files.fsync_works:
            inode = self.files.inodes[self.number]
            inode.durable, inode.pending = inode.cached, []

    def close(self) -> None:
        pass


class InPlaceBackend(FileDctBackend):
    """Mutant: writes dct.bin itself (with fsync), no temporary file."""

    def commit(self, image: bytes, fault: Callable[[str], None]) -> None:
        handle = self.files.create(self.path)
        for start in range(0, len(image), self.CHUNK):
            handle.write(image[start:start + self.CHUNK])
        handle.sync()
        handle.close()


Write = Callable[[Dct], object]
WRITES: dict[str, Write] = {
    "claim code (63 bytes, one chunk)": lambda dct: ClaimCodeHal(dct).set_claim_code(CODE63),
    "eap_config (4296 bytes, three chunks)": lambda dct: dct.write(3823, bytes(range(256)) * 16
                                                                    + bytes(200)),
}


def power_cut_violations(write: Write, backend: type[FileDctBackend] = FileDctBackend,
                         **switches: bool) -> list[str]:
    """Cut the power before every file operation of ``write`` (and after it returned); list
    every reboot whose image is neither the whole old image nor the whole new one, or not the
    new one although the write had returned."""
    base = PageCacheFiles(**switches)
    old = Dct(FileDctBackend(PATH, files=base))
    old.write(0, b"\x11" * DCT_SIZE)  # every byte known: a torn chunk cannot hide
    ClaimCodeHal(old).set_claim_code("A" * 63)
    base.sync_everything()
    old_image = old.image()
    expected = Dct(FileDctBackend(PATH, files=copy.deepcopy(base)))
    write(expected)
    new_image = expected.image()
    assert new_image != old_image
    violations: list[str] = []
    for cut in itertools.count():
        files = copy.deepcopy(base)
        files.cut_at, files.ops = cut, 0
        try:
            write(Dct(backend(PATH, files=files)))
            returned = True
        except PowerCut:
            returned = False
        for after in files.crashes():
            try:
                image = Dct(FileDctBackend(PATH, files=after)).image()
            except ConfigurationError as exc:
                violations.append(f"cut {cut}: unreadable after reboot: {exc}")
                continue
            if image == new_image or (image == old_image and not returned):
                continue
            what = ("the old image although the write had returned" if image == old_image
                    else f"a torn image ({len(image)} bytes)")
            violations.append(f"cut {cut}: {what}")
        if returned:
            return violations
    raise AssertionError("unreachable")


@pytest.mark.parametrize("write", list(WRITES), ids=["claim-code", "multi-chunk"])
def test_every_power_cut_leaves_the_whole_old_or_the_whole_new_image(write: str) -> None:
    assert power_cut_violations(WRITES[write]) == []


@pytest.mark.parametrize("mutant,switches", [
    (InPlaceBackend, {}),                       # no temporary file
    (FileDctBackend, {"fsync_works": False}),   # no fsync of the temporary file
    (FileDctBackend, {"dir_fsync_works": False}),  # no fsync of the directory
], ids=["in-place", "no-fsync", "no-dir-fsync"])
@pytest.mark.parametrize("write", list(WRITES), ids=["claim-code", "multi-chunk"])
def test_the_check_catches_unsafe_writers(write: str, mutant: type[FileDctBackend],
                                          switches: dict[str, bool]) -> None:
    """Mutation checks: the same power-cut check fails each unsafe way of writing."""
    assert power_cut_violations(WRITES[write], mutant, **switches) != []


def test_the_steps_of_a_file_write() -> None:
    steps: list[str] = []
    dct = Dct(FileDctBackend(PATH, files=PageCacheFiles()), fault_hook=steps.append)
    ClaimCodeHal(dct).set_claim_code(CODE63)
    assert steps[0] == "begin" and steps[-1] == "done"
    assert steps[64:] == [*(f"persist:{k}" for k in range(5)), "sync", "commit", "sync-dir",
                          "done"]


def test_a_directory_at_the_temporary_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dct.bin.tmp").mkdir()
    with pytest.raises(ConfigurationError, match=r"dct\.bin\.tmp is not a regular file"):
        Dct(FileDctBackend(tmp_path / "dct.bin"))
    (tmp_path / "dct.bin.tmp").rmdir()
    dct = Dct(FileDctBackend(tmp_path / "dct.bin"))
    (tmp_path / "dct.bin.tmp").mkdir()  # appears while running
    with pytest.raises(ConfigurationError, match="not a regular file"):
        ClaimCodeHal(dct).set_claim_code(CODE63)
    (tmp_path / "dct.bin.tmp").rmdir()
    (tmp_path / "dct.bin").mkdir()
    with pytest.raises(ConfigurationError, match=r"dct\.bin is not a regular file"):
        Dct(FileDctBackend(tmp_path / "dct.bin"))


def test_a_hostile_wifi_json_is_a_clear_error(tmp_path: Path) -> None:
    from firmware_sim.kernel import World
    from firmware_sim.system import Device

    (tmp_path / "wifi.json").write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(ConfigurationError, match="cannot read Wi-Fi credentials"):
        Device(World(1), "dev", storage_dir=tmp_path)


def test_the_cli_prints_one_line_for_a_broken_storage_dir(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from firmware_sim.cli import main

    (tmp_path / "dct.bin.tmp").mkdir()
    assert main(["serve", "--storage", str(tmp_path), "--for", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dct.bin.tmp is not a regular file" in err, err
    (tmp_path / "dct.bin.tmp").rmdir()
    (tmp_path / "wifi.json").write_text("[" * 10_000 + "]" * 10_000)
    assert main(["serve", "--storage", str(tmp_path), "--for", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read Wi-Fi credentials" in err, err
