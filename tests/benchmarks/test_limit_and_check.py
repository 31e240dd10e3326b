"""The benchmarks' limit and correctness columns, and ``--check BASELINE.json`` (issue 20).

- :func:`benchmarks._limit.irreducible_conv` is a pruned spectral convolution: its output
  equals the library's functional :func:`operators.spectral_conv.spectral_conv` on random
  weights (and, without weights, the plain rfftn / slice / zero-pad / irfftn pair);
- the correctness column is measured against a float64 evaluation;
- the ratio check runs on hand-written results files: no suite runs and no timing is read.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import benchmarks.__main__ as cli
from benchmarks._harness import Row, check_regressions, print_table
from benchmarks._limit import IrreducibleConv, irreducible_conv, max_error_vs_float64
from operators.spectral_conv import SpectralConv, spectral_conv
from spectral.modes import kept_shape

CASES = [((16, 16), (4, 5)), ((15, 17), (3, 4)), ((9, 8), (1, 2)), ((32,), (7,)), ((8, 10, 9), (3, 2, 4))]


@pytest.mark.parametrize("grid, n_modes", CASES)
def test_irreducible_conv_is_the_spectral_conv(grid, n_modes):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *grid, dtype=torch.float64, generator=gen)
    w = torch.randn(math.prod(kept_shape(n_modes)), 3, 5, 2, dtype=torch.float64, generator=gen)
    ours = irreducible_conv(x, torch.view_as_complex(w), n_modes)
    assert ours.shape == (2, 5, *grid) and ours.dtype == torch.float64
    torch.testing.assert_close(ours, spectral_conv(x, w, n_modes), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("grid, n_modes", CASES)
@pytest.mark.parametrize("with_weight", [True, False])
def test_irreducible_backward_gives_the_spectral_conv_gradients(grid, n_modes, with_weight):
    """The hand-written backward against autograd through the library's functional form."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, *grid, dtype=torch.float64, generator=gen, requires_grad=True)
    kt = math.prod(kept_shape(n_modes))
    if with_weight:
        w = torch.randn(kt, 3, 4, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    else:  # the identity mix
        w = torch.view_as_real(torch.eye(3, dtype=torch.complex128).expand(kt, 3, 3).contiguous()).requires_grad_(True)
    g = torch.randn(2, w.shape[2], *grid, dtype=torch.float64, generator=gen)
    expected = torch.autograd.grad(spectral_conv(x, w, n_modes), (x, w), g)
    if with_weight:
        got = torch.autograd.grad(irreducible_conv(x, torch.view_as_complex(w), n_modes), (x, w), g)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-10, atol=1e-10)
    else:
        got = torch.autograd.grad(irreducible_conv(x, None, n_modes), (x,), g)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-10, atol=1e-10)


def test_irreducible_gradcheck():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(5 * 2, 2, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: irreducible_conv(a, b, (3, 2)), (x, w))


@pytest.mark.parametrize("grid, n_modes", CASES)
def test_irreducible_transforms_alone_are_the_plain_pair(grid, n_modes):
    """Without weights: keep |k| < m through the textbook rfftn / keep corners / zero-fill / irfftn (a mask)."""
    x = torch.randn(2, 3, *grid, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    d = len(grid)
    spec = torch.fft.rfftn(x, dim=tuple(range(-d, 0)))
    freqs = [torch.fft.fftfreq(n, 1 / n).abs() for n in grid[:-1]] + [torch.fft.rfftfreq(grid[-1], 1 / grid[-1])]
    mask = torch.ones(spec.shape[-d:], dtype=torch.bool)
    for i, (f, m) in enumerate(zip(freqs, n_modes)):
        mask &= (f < m).reshape(*([1] * i), -1, *([1] * (d - i - 1)))
    expected = torch.fft.irfftn(spec * mask, s=grid, dim=tuple(range(-d, 0)))
    torch.testing.assert_close(irreducible_conv(x, None, n_modes), expected, rtol=1e-10, atol=1e-12)


def test_irreducible_module_matches_the_layer_and_its_gradients():
    conv = SpectralConv(3, 4, (4, 3), dtype=torch.float64)
    with torch.no_grad():
        conv.bias.normal_()
    limit = IrreducibleConv(conv)
    x = torch.randn(2, 3, 12, 10, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(limit(x), conv(x))
    (gx_ours, gw_ours) = torch.autograd.grad(conv(x).square().sum(), (x, conv.weight))
    (gx_lim, gw_lim) = torch.autograd.grad(limit(x).square().sum(), (x, limit.weight))
    torch.testing.assert_close(gx_lim, gx_ours)
    torch.testing.assert_close(gw_lim, gw_ours)


def test_irreducible_rejects_bad_input():
    with pytest.raises(ValueError, match="does not admit"):
        irreducible_conv(torch.randn(1, 2, 8, 8), None, (5, 2))
    with pytest.raises(ValueError, match="grid axes"):
        irreducible_conv(torch.randn(1, 2, 8), None, (2, 2))
    with pytest.raises(ValueError, match="weight must be"):
        irreducible_conv(torch.randn(1, 2, 8, 8), torch.randn(3, 2, 2, dtype=torch.cfloat), (2, 2))
    with pytest.raises(ValueError, match="dense"):
        IrreducibleConv(SpectralConv(2, 2, (2, 2), separable=True))


def test_error_column_is_against_float64():
    seen = []

    def reference(x):
        seen.append(x.dtype)
        return x * 3.0

    x = torch.randn(64, generator=torch.Generator().manual_seed(2))
    ours = x * 3.0  # float32 arithmetic
    err = max_error_vs_float64(ours, reference, x)
    assert seen == [torch.float64]
    assert err == (ours.double() - x.double() * 3.0).abs().max().item()
    assert 0 < err < 1e-5  # float32 rounding, seen only against float64
    with pytest.raises(ValueError, match="float64"):
        max_error_vs_float64(ours, lambda t: t.float(), x)


def test_fno_suite_error_column_of_a_float32_layer():
    bench_fno = pytest.importorskip("benchmarks.bench_fno")
    conv = SpectralConv(3, 3, (4, 4))
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    err = bench_fno.conv_error(conv, x)
    with torch.no_grad():
        expected = (conv.double()(x.double()) - conv.float()(x).double()).abs().max().item()
    assert 0 < err < 1e-5
    assert err == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_table_shows_the_error_column(capsys):
    print_table([Row("s", "c", "fwd", "ours", "irreducible", 2.0, 1.0, max_error=3e-7),
                 Row("s", "c", "step", "ours", "base", 2.0, 1.0)])
    header, _, with_err, without = capsys.readouterr().out.strip().splitlines()
    assert header.endswith("ratio  ours err vs f64")
    assert with_err.split()[-2:] == ["0.50x", "3.0e-07"] and without.split()[-1] == "0.50x"


def _results(*rows):
    suites = {}
    for suite, case, phase, ratio in rows:
        suites.setdefault(suite, []).append(
            {"suite": suite, "case": case, "phase": phase, "ours": "ours", "baseline": "base", "ratio": ratio})
    return {"machine": {}, "quick": True, "suites": [{"suite": s, "rows": r, "extra": {}} for s, r in suites.items()]}


def test_check_flags_only_ratios_down_more_than_ten_percent():
    before = _results(("fno", "a", "fwd", 2.0), ("fno", "b", "fwd", 1.0), ("fno", "c", "fwd", 1.0),
                      ("fno", "gone", "fwd", 1.0), ("mixers", "m", "fwd", 5.0))
    now = _results(("fno", "a", "fwd", 1.79), ("fno", "b", "fwd", 0.91), ("fno", "c", "fwd", 3.0),
                   ("fno", "fresh", "fwd", 0.1))
    found = check_regressions(now, before)
    assert [(k[1], old, new) for k, old, new in found["regressions"]] == [("a", 2.0, 1.79)]
    assert [k[1] for k in found["new"]] == ["fresh"]
    assert [k[1] for k in found["missing"]] == ["gone"]  # the mixers suite was not run: not missing
    assert found["compared"] == 3


def test_check_matches_rows_on_all_five_keys_and_skips_nan():
    before = _results(("fno", "a", "fwd", 2.0), ("fno", "a", "fwd+bwd", float("nan")))
    now = _results(("fno", "a", "fwd+bwd", 0.5), ("fno", "a", "fwd", 2.0))
    now["suites"][0]["rows"][0]["baseline"] = "other"  # same suite/case/phase, another baseline: a new row
    found = check_regressions(now, before)
    assert found["regressions"] == [] and found["compared"] == 1
    assert [k[2:] for k in found["new"]] == [("fwd+bwd", "ours", "other")]
    with pytest.raises(ValueError, match="tolerance"):
        check_regressions(now, before, tolerance=1.5)
    with pytest.raises(ValueError, match="results file"):
        check_regressions(now, {"rows": []})


def _run_cli(monkeypatch, tmp_path, baseline, rows):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline))
    monkeypatch.setattr(cli, "run_suite", lambda name, ctx: {"suite": name, "rows": rows, "extra": {}})
    monkeypatch.setattr(cli, "write_json", lambda p, payload: None)
    return cli.main(["fno", "--quick", "--check", str(path)])


def test_cli_check_exits_non_zero_on_a_regression_and_prints_it(monkeypatch, tmp_path, capsys):
    baseline = _results(("fno", "a", "fwd", 1.0), ("fno", "b", "fwd", 1.0))
    rows = _results(("fno", "a", "fwd", 0.8), ("fno", "b", "fwd", 0.95), ("fno", "n", "fwd", 1.0))["suites"][0]["rows"]
    assert _run_cli(monkeypatch, tmp_path, baseline, rows) == 1
    out = capsys.readouterr().out
    assert "REGRESSION fno/a/fwd/ours/base: ratio 1.00x -> 0.80x" in out
    assert "fno/b/fwd" not in out and "new row (not in the baseline) fno/n/fwd/ours/base" in out


def test_cli_check_passes_without_regressions_and_rejects_a_bad_file(monkeypatch, tmp_path, capsys):
    baseline = _results(("fno", "a", "fwd", 1.0))
    rows = _results(("fno", "a", "fwd", 0.95))["suites"][0]["rows"]
    assert _run_cli(monkeypatch, tmp_path, baseline, rows) == 0
    assert "no regressions" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _run_cli(monkeypatch, tmp_path, {"not": "results"}, rows)
    assert "--check" in capsys.readouterr().err


def test_conv_free_bound_model_is_the_fno_with_silent_spectral_convs():
    # the fno suite's bound row times an FNO whose spectral convolutions are free stand-ins: it must be
    # the same network with every SpectralConv contributing nothing (zero weights and bias), and leave
    # the model it copies alone
    from benchmarks.bench_fno import conv_free
    from operators.fno import FNO

    torch.manual_seed(0)
    model = FNO(1, 1, (4, 4), hidden_channels=8, n_layers=3).double()
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    before = model(x)
    free = conv_free(model)
    silent = FNO(1, 1, (4, 4), hidden_channels=8, n_layers=3).double()
    silent.load_state_dict(model.state_dict())
    with torch.no_grad():
        for block in silent.blocks:
            for p in block.conv.parameters():
                p.zero_()
    torch.testing.assert_close(free(x), silent(x))
    torch.testing.assert_close(model(x), before)
    assert not torch.allclose(free(x), before)
    free(x).sum().backward()  # the stand-in keeps a gradient path for the timed training step
    assert all(p.grad is not None for p in free.lifting.parameters())
    # it holds the convolutions' weights (the optimizer updates as many numbers as for the real model),
    # each with an all-zero gradient, so an Adam step leaves them as they are
    assert sum(p.numel() for p in free.parameters()) == sum(p.numel() for p in model.parameters())
    held = [p for block in free.blocks for p in block.conv.parameters()]
    assert len(held) == len(list(model.blocks[0].conv.parameters())) * len(model.blocks)
    for p, q in zip(held, (q for block in model.blocks for q in block.conv.parameters())):
        assert p is not q and torch.equal(p, q)
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.any()
    before_step = [p.detach().clone() for p in held]
    torch.optim.Adam(free.parameters(), lr=1e-3).step()
    assert all(torch.equal(p, b) for p, b in zip(held, before_step))
