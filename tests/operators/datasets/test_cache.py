"""On-disk cache: keys, location, atomic writes, recovery, and generator determinism."""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

import pytest
import torch

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
    with pytest.warns(UserWarning, match="unreadable cache file"):
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
    with pytest.warns(UserWarning, match="could not write cache file .*No space left"):
        data = cached("g", {"a": 1}, lambda: {"x": torch.arange(3)}, cache_dir=tmp_path)
    assert torch.equal(data["x"], torch.arange(3))


def test_an_unusable_cache_folder_fails_before_generating(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    calls = []
    with pytest.raises(OSError):
        cached("g", {"a": 1}, lambda: calls.append(1) or {"x": 1}, cache_dir=blocker / "cache")
    assert calls == []
