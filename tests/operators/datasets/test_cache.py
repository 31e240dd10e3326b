"""On-disk cache: keys, location, atomic writes, recovery, and generator determinism."""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest
import torch

import operators.checkpoint as checkpoint
import operators.datasets._cache as cache_mod
from operators.datasets._cache import (
    CACHE_ENV_VAR,
    cache_key,
    cache_path,
    cached,
    clear_cache,
    default_cache_dir,
    save_atomic,
)
from operators.datasets.burgers import burgers

pytestmark = pytest.mark.usefixtures("one_thread")


# tiny Burgers problem: solves in milliseconds
TINY = dict(n=2, resolution=8, solver_resolution=16, t_final=0.5, dt=0.25, progress=False)
# arguments that do not change the numbers and are left out of the key
NOT_IN_KEY = {"cache", "cache_dir", "progress", "device", "batch_size"}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".pt")


def test_default_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "spectral-operators"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "spectral-operators"
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_key_is_order_independent_and_type_sensitive():
    assert cache_key("g", {"a": 1, "b": 2.0}) == cache_key("g", {"b": 2.0, "a": 1})
    assert cache_key("g", {"a": 1}) != cache_key("g", {"a": 1.0})
    assert cache_key("g", {"a": 1}) != cache_key("h", {"a": 1})
    assert cache_key("g", {"a": 0.1}) != cache_key("g", {"a": 0.1 + 1e-17 + 2**-56})
    with pytest.raises(TypeError, match="plain values, got object"):
        cache_key("g", {"a": object()})


@pytest.mark.parametrize(
    "change",
    [
        dict(n=3), dict(resolution=4), dict(solver_resolution=32), dict(viscosity=0.05), dict(t_final=0.75),
        dict(dt=0.125), dict(grf_alpha=2.5), dict(grf_tau=4.0), dict(grf_sigma=20.0), dict(seed=1),
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_parameter_changes_the_key(tmp_path, change):
    burgers(**TINY, cache_dir=tmp_path)
    burgers(**TINY, cache_dir=tmp_path)  # second call: a cache hit, no new file
    assert len(_files(tmp_path)) == 1
    burgers(**{**TINY, **change}, cache_dir=tmp_path)
    assert len(_files(tmp_path)) == 2


def test_the_key_covers_every_generator_parameter(monkeypatch):
    """Each generator passes every argument that changes the data into the key."""
    from operators.datasets.burgers import burgers as f_burgers
    from operators.datasets.darcy import darcy as f_darcy
    from operators.datasets.navier_stokes import navier_stokes as f_ns, navier_stokes_sequences as f_nss
    from operators.datasets.shallow_water import shallow_water as f_sw, shallow_water_rollouts as f_swr

    seen = {}

    def fake_cached(name, params, generate, **kwargs):
        seen[name] = params
        raise KeyboardInterrupt  # stop before any work

    for fn in (f_burgers, f_darcy, f_ns, f_nss, f_sw, f_swr):
        monkeypatch.setattr(inspect.getmodule(fn), "cached", fake_cached)
        with pytest.raises(KeyboardInterrupt):
            fn(2)
        name = fn.__name__
        expected = set(inspect.signature(fn).parameters) - NOT_IN_KEY - {"normalize"}
        assert expected <= set(seen[name]), f"{name}: missing {expected - set(seen[name])}"
        assert "version" in seen[name]


def test_cache_hit_returns_identical_data_and_is_a_file_read(tmp_path, monkeypatch):
    first = burgers(**TINY, cache_dir=tmp_path)
    # the package re-exports the function ``burgers``, so reach the module through importlib
    module = importlib.import_module("operators.datasets.burgers")
    monkeypatch.setattr(module, "burgers_solve", lambda *a, **k: pytest.fail("recomputed"))
    second = burgers(**TINY, cache_dir=tmp_path)
    assert torch.equal(first.inputs, second.inputs) and torch.equal(first.targets, second.targets)


def test_env_var_selects_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "via-env"))
    burgers(**TINY)
    assert len(_files(tmp_path / "via-env")) == 1


def test_interrupted_write_leaves_no_final_file(tmp_path, monkeypatch):
    target = tmp_path / "x.pt"

    def dying_save(obj, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of torch.save

    monkeypatch.setattr(cache_mod.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"a": 1}, target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file was removed as well


def test_interrupted_replace_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "x.pt"
    save_atomic({"a": torch.arange(3)}, target)
    monkeypatch.setattr(cache_mod.os, "replace", lambda *a: (_ for _ in ()).throw(SystemExit(1)))
    with pytest.raises(SystemExit):
        save_atomic({"a": torch.arange(5)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.arange(3))


def test_leftover_temp_file_is_ignored_and_cleared(tmp_path):
    path = cache_path("burgers", {}, tmp_path)  # only to learn the naming scheme
    path.parent.mkdir(parents=True, exist_ok=True)
    stray = tmp_path / f".{path.name}.abc123.tmp"  # what a SIGKILL during a write leaves
    stray.write_bytes(b"\x80\x02 truncated pickle")
    data = burgers(**TINY, cache_dir=tmp_path)
    assert torch.isfinite(data.targets).all()
    assert len(_files(tmp_path)) == 1
    assert clear_cache(tmp_path) == 2  # the data file and the stray
    assert list(tmp_path.iterdir()) == []


def test_corrupt_final_file_is_regenerated(tmp_path):
    reference = burgers(**TINY, cache=False)
    burgers(**TINY, cache_dir=tmp_path)
    (final,) = _files(tmp_path)
    final.write_bytes(final.read_bytes()[:100])  # truncated by a disk error
    with pytest.warns(UserWarning, match=rf"cache file {re.escape(str(final))} is damaged"):
        again = burgers(**TINY, cache_dir=tmp_path)
    assert torch.equal(again.targets, reference.targets)
    assert torch.equal(burgers(**TINY, cache_dir=tmp_path).targets, reference.targets)  # rewritten, readable


def test_cached_ignores_a_file_with_other_parameters(tmp_path):
    path = cache_path("g", {"a": 1}, tmp_path)
    save_atomic({"format": 1, "name": "g", "params": {"a": 2}, "data": {"x": 0}}, path)  # e.g. a hash clash
    assert cached("g", {"a": 1}, lambda: {"x": 1}, cache_dir=tmp_path) == {"x": 1}


def test_determinism_for_a_seed_without_cache():
    a = burgers(**TINY, seed=3, cache=False)
    b = burgers(**TINY, seed=3, cache=False)
    c = burgers(**TINY, seed=4, cache=False)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


def test_clear_cache_by_name(tmp_path):
    burgers(**TINY, cache_dir=tmp_path)
    (tmp_path / "darcy-0123.pt").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("keep me")
    assert clear_cache(tmp_path, name="burgers") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["darcy-0123.pt", "notes.txt"]
    assert clear_cache(tmp_path / "missing") == 0
    assert os.path.exists(tmp_path / "notes.txt")


def test_clear_cache_removes_only_the_files_the_cache_makes(tmp_path):
    """The cache folder may be shared: a user's checkpoint.pt must survive clear_cache."""
    ours = cache_path("burgers", {"n": 1}, tmp_path)
    save_atomic({"x": 1}, ours)
    other = cache_path("darcy", {"n": 1}, tmp_path)
    save_atomic({"x": 2}, other)
    stray_tmp = tmp_path / f".{ours.name}.ab12_x9z.tmp"  # a write killed half-way
    stray_tmp.write_bytes(b"")
    foreign = [tmp_path / n for n in ("checkpoint.pt", "my_model.pt", "burgers-final.pt", ".hidden.tmp", "notes.txt")]
    for p in foreign:
        p.write_bytes(b"keep")
    assert clear_cache(tmp_path, name="burgers") == 2  # ours and its temporary file
    assert not ours.exists() and not stray_tmp.exists() and other.exists()
    assert clear_cache(tmp_path) == 1 and not other.exists()
    assert all(p.read_bytes() == b"keep" for p in foreign)


def test_cache_files_get_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        save_atomic({"x": 1}, tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "a.pt").stat().st_mode & 0o777 == 0o644


def test_a_failed_cache_write_returns_the_generated_data_with_a_warning(tmp_path, monkeypatch):
    def failing_save(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod, "save_atomic", failing_save)
    with pytest.warns(UserWarning, match=rf"could not write to the cache folder {re.escape(str(tmp_path))} .*No space left"):
        data = cached("g", {"a": 1}, lambda: {"x": torch.arange(3)}, cache_dir=tmp_path)
    assert torch.equal(data["x"], torch.arange(3))


def test_an_unusable_cache_folder_fails_before_generating(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    calls = []
    with pytest.raises(OSError):
        cached("g", {"a": 1}, lambda: calls.append(1) or {"x": 1}, cache_dir=blocker / "cache")
    assert calls == []


# ------------------------------------------------- damaged files, full disks, concurrent generations
VALUES = torch.arange(512, dtype=torch.float32) * 0.5 + 3.0  # distinctive bytes to find in the file


def _generator(calls: list):
    def generate():
        calls.append(1)
        return {"x": VALUES.clone()}

    return generate


def _flip_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    offset = bytes(data).find(VALUES.numpy().tobytes()[:64])
    assert offset > 0
    data[offset + 9] ^= 0x04  # torch.load alone returns a changed value
    path.write_bytes(bytes(data))


DAMAGE = {
    "flipped-tensor-byte": _flip_tensor_byte,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "zero-bytes": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(b"\x00garbage\xff" * 100),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_cache_file_is_named_in_a_warning_then_regenerated_and_rewritten(tmp_path, damage):
    calls = []
    cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)
    path = cache_path("g", {"a": 1}, tmp_path)
    damage(path)
    with pytest.warns(UserWarning, match=rf"cache file {re.escape(str(path))} is damaged") as record:
        again = cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)
    assert len(record) == 1  # one warning, not one per look at the file
    assert torch.equal(again["x"], VALUES) and len(calls) == 2
    assert torch.equal(torch.load(path, weights_only=True)["data"]["x"], VALUES)  # rewritten whole
    third = cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)  # read back, no warning
    assert torch.equal(third["x"], VALUES) and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_cache_file_written_before_checksums_still_loads(tmp_path):
    path = cache_path("g", {"a": 1}, tmp_path)
    torch.save({"format": 1, "name": "g", "params": {"a": 1}, "data": {"x": VALUES}}, path)  # the old layout
    calls = []
    data = cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)
    assert torch.equal(data["x"], VALUES) and calls == []


class _DiskFull:
    """A file on a disk that is full: every write raises OSError(ENOSPC), as a real full disk does."""

    def __init__(self, f):
        self._f = f

    def write(self, b) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _full_disk_write(monkeypatch) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(checkpoint.os, "fdopen", lambda *a, **k: _DiskFull(real_fdopen(*a, **k)))


def _torch_save_runtime_error(monkeypatch) -> None:
    def failing_save(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . write failed: No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)


@pytest.mark.parametrize("full_disk", [_full_disk_write, _torch_save_runtime_error], ids=["oserror", "runtimeerror"])
def test_a_full_disk_during_a_cache_write_returns_the_data_with_a_warning_naming_the_folder(
    tmp_path, monkeypatch, full_disk
):
    calls = []
    full_disk(monkeypatch)
    with pytest.warns(UserWarning, match=rf"could not write to the cache folder {re.escape(str(tmp_path))} .*ENOSPC"):
        data = cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)
    monkeypatch.undo()
    assert torch.equal(data["x"], VALUES) and len(calls) == 1
    assert list(tmp_path.iterdir()) == []  # no .tmp, no lock, no partial file


_CONCURRENT = """
import os, sys, time, torch
from operators.datasets import cached
folder, log, go, ready = sys.argv[1:5]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
def generate():
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(1.0)  # long enough for the other process to ask for the same entry meanwhile
    return {"x": torch.arange(10) * 7}
print(cached("shared", {"n": 10}, generate, cache_dir=folder)["x"].tolist())
"""


def test_two_processes_generate_the_same_entry_once_and_both_get_it(tmp_path):
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    log, go, cache = tmp_path / "runs.log", tmp_path / "go", tmp_path / "cache"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(cache), str(log), str(go), str(r)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in ready
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        go.touch()  # both are imported and waiting: start them together
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    expected = (torch.arange(10) * 7).tolist()
    assert [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs] == [expected, expected]
    assert len(log.read_text().splitlines()) == 1  # generated once
    assert sorted(p.name for p in cache.iterdir()) == [cache_path("shared", {"n": 10}, cache).name]  # no lock left


def test_clear_cache_removes_stale_lock_files_and_keeps_a_held_one(tmp_path):
    calls = []
    cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)
    path = cache_path("g", {"a": 1}, tmp_path)
    stale = tmp_path / f"{path.name}.lock"
    stale.write_bytes(b"")  # what a process killed while generating leaves
    other = cache_path("h", {"a": 1}, tmp_path)
    held = filelock.FileLock(f"{other}.lock")
    with held:  # a generation running now
        assert torch.equal(cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)["x"], VALUES)
        assert clear_cache(tmp_path) == 2  # the data file and the stale lock
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{other.name}.lock"]
    assert len(calls) == 1


def test_a_stale_lock_file_does_not_block_a_generation(tmp_path):
    path = cache_path("g", {"a": 1}, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{path}.lock").write_bytes(b"")
    calls = []
    assert torch.equal(cached("g", {"a": 1}, _generator(calls), cache_dir=tmp_path)["x"], VALUES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
