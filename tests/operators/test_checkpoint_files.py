"""Checkpoint files lose nothing: checksums catch every damage, failed writes keep the previous file.

The references are independent of the code under test: ``hashlib`` over the file's bytes,
``zipfile`` for the archive layout, plain ``torch.save`` for files in the old layout.
"""

from __future__ import annotations

import errno
import hashlib
import pickle
import re
import zipfile
from pathlib import Path

import pytest
import torch

import operators.checkpoint as checkpoint
from operators.checkpoint import (
    DamagedFileError,
    atomic_save,
    checked_load,
    load_checkpoint,
    save_checkpoint,
)

CONFIG = {"lr": 1e-3, "batch_size": 4}
WEIGHTS = torch.arange(256, dtype=torch.float32) * 0.25 + 1.0  # distinctive bytes to find in the file


def _save(path: Path, epoch: int = 3) -> dict:
    state = {"epoch": epoch, "config": CONFIG, "model": {"w": WEIGHTS * epoch}}
    save_checkpoint(path, **state)
    return state


def _tensor_data_offset(path: Path) -> int:
    """Where the bytes of ``model.w`` start in the file (searched for, not computed by the library)."""
    data = path.read_bytes()
    needle = (WEIGHTS * 3).numpy().tobytes()[:64]
    offset = data.find(needle)
    assert offset > 0
    return offset


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------- the format
def test_checksum_is_the_sha256_of_the_archive_and_the_file_stays_a_torch_save_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    state = _save(path)
    data = path.read_bytes()
    comment = zipfile.ZipFile(path).comment
    assert comment.startswith(b"spectral-operators-sha256:")
    assert comment.endswith(hashlib.sha256(data[: -len(comment)]).hexdigest().encode())
    plain = torch.load(path, weights_only=True)  # torch.load ignores the zip comment
    assert plain["epoch"] == 3 and torch.equal(plain["model"]["w"], state["model"]["w"])
    assert torch.equal(torch.load(path, weights_only=True, mmap=True)["model"]["w"], state["model"]["w"])
    loaded = load_checkpoint(path, config=CONFIG)
    assert loaded["format"] == checkpoint.CHECKPOINT_FORMAT and torch.equal(loaded["model"]["w"], WEIGHTS * 3)


def test_a_file_in_the_old_layout_without_checksum_still_loads(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": 1, "epoch": 2, "config": CONFIG, "model": {"w": WEIGHTS}}, path)  # as before
    assert zipfile.ZipFile(path).comment == b""
    state = load_checkpoint(path, config=CONFIG)
    assert state["epoch"] == 2 and torch.equal(state["model"]["w"], WEIGHTS)
    assert checked_load(path)["epoch"] == 2


def test_atomic_save_without_checksum_writes_what_torch_save_writes(tmp_path):
    atomic_save({"w": WEIGHTS}, tmp_path / "a.pt", checksum=False)
    with open(tmp_path / "b.pt", "wb") as f:  # a file object: the same archive name inside as atomic_save's
        torch.save({"w": WEIGHTS}, f)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    with pytest.raises(TypeError, match="checksum must be a bool, got int 1"):
        atomic_save({"w": WEIGHTS}, tmp_path / "c.pt", checksum=1)


# ----------------------------------------------------------------- damage
def _flip_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[_tensor_data_offset(path) + 5] ^= 0x10  # a float changes value; torch.load alone does not notice
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cut_last_byte(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 8)


DAMAGE = [_flip_tensor_byte, _truncate, _cut_last_byte, _zero_bytes, _garbage]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_checkpoint_is_a_value_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "checkpoint.pt"
    _save(path)
    damage(path)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is damaged"):
        load_checkpoint(path, config=CONFIG)
    with pytest.raises(DamagedFileError, match=rf"{re.escape(str(path))} is damaged"):
        checked_load(path)


def test_flipped_tensor_bytes_load_silently_without_the_checksum(tmp_path):
    """Why the checksum is needed: torch.load returns the flipped value (the reference behaviour)."""
    path = tmp_path / "checkpoint.pt"
    _save(path)
    _flip_tensor_byte(path)
    changed = torch.load(path, weights_only=True)["model"]["w"]
    assert not torch.equal(changed, WEIGHTS * 3)


def test_every_single_byte_flip_anywhere_in_the_file_is_named(tmp_path):
    """A flipped bit in any byte (archive headers, pickle, tensor data, the checksum itself) is caught."""
    path = tmp_path / "checkpoint.pt"
    _save(path)
    original = path.read_bytes()
    missed = []
    for i in range(0, len(original), 4):
        data = bytearray(original)
        data[i] ^= 0x01 << (i % 8)
        path.write_bytes(bytes(data))
        try:
            checked_load(path)
        except DamagedFileError as err:
            assert str(path) in str(err)
        else:
            missed.append(i)
    assert missed == [], f"flips at {missed} of {len(original)} bytes loaded silently"


def test_a_damaged_file_without_checksum_is_named_too(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": 1, "config": CONFIG, "model": {"w": WEIGHTS}}, path)
    _truncate(path)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is damaged"):
        load_checkpoint(path, config=CONFIG)
    torch.save({"w": WEIGHTS}, path, _use_new_zipfile_serialization=False)  # torch's legacy format
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is damaged or not a torch.save file"):
        checked_load(path)


def test_an_intact_file_that_weights_only_refuses_is_not_called_damaged(tmp_path):
    path = tmp_path / "pickled.pt"
    atomic_save({"f": Path("x")}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        checked_load(path)
    assert checked_load(path, weights_only=False)["f"] == Path("x")


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        checked_load(tmp_path / "nothing.pt")


# ----------------------------------------------------------------- a full disk
class _DiskFull:
    """A file whose disk fills up after ``room`` bytes: write raises OSError(ENOSPC)."""

    def __init__(self, f, room: int):
        self._f, self._room = f, room

    def write(self, b) -> int:
        if len(b) > self._room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(b)
        return self._f.write(b)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _fill_disk_after(monkeypatch, room: int) -> None:
    real_fdopen = checkpoint.os.fdopen
    monkeypatch.setattr(checkpoint.os, "fdopen", lambda *a, **k: _DiskFull(real_fdopen(*a, **k), room))


def _torch_save_reports_enospc(monkeypatch) -> None:
    def failing_save(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . write failed: No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)


FULL_DISKS = {
    "write-enospc-at-once": lambda mp: _fill_disk_after(mp, 0),
    "write-enospc-midway": lambda mp: _fill_disk_after(mp, 700),
    "torch-save-runtimeerror": _torch_save_reports_enospc,
}


@pytest.mark.parametrize("full_disk", FULL_DISKS.values(), ids=FULL_DISKS.keys())
def test_a_full_disk_is_an_oserror_naming_the_path_and_enospc_and_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, full_disk
):
    path = tmp_path / "checkpoint.pt"
    _save(path, epoch=3)
    before = path.read_bytes()
    full_disk(monkeypatch)
    with pytest.raises(OSError, match=rf"ENOSPC.*{re.escape(str(path))}") as info:
        _save(path, epoch=4)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before
    assert load_checkpoint(path, config=CONFIG)["epoch"] == 3
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_failing_fsync_is_an_oserror_naming_the_path(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"

    def no_room(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", no_room)
    with pytest.raises(OSError, match=r"No space left on device \(ENOSPC\) while writing"):
        _save(path)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_errors_that_are_not_io_pass_through_unchanged(tmp_path, monkeypatch):
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)) as info:
        atomic_save({"f": lambda: 0}, tmp_path / "x.pt")  # not picklable: the caller's bug, not the disk's
    assert not isinstance(info.value, OSError)

    def interrupted(obj, f):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"w": WEIGHTS}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []
