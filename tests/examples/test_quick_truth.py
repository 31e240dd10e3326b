"""fourier_head_density, periodic_extrapolation and inr_image: a run says whether it ranks the methods as the
measured full run does, ``--help`` is short, and no progress bar reaches a redirected log."""

from __future__ import annotations

import pytest

from tests.examples._load import load_example


@pytest.fixture(scope="module")
def fhd():
    return load_example("fourier_head_density")


@pytest.fixture(scope="module")
def pe():
    return load_example("periodic_extrapolation")


@pytest.fixture(scope="module")
def inr():
    return load_example("inr_image")


def _density_rows(kls: dict) -> list[dict]:
    return [{"dataset": d, "head": h, "kl": kl} for (d, h), kl in kls.items()]


def test_density_notes_name_each_data_set_and_whether_the_heads_rank_as_in_the_16_seed_run(fhd):
    rows = _density_rows({("gaussian", "linear"): 0.36, ("gaussian", "fourier"): 0.51,
                          ("beta", "linear"): 0.61, ("beta", "fourier"): 0.35})
    gaussian, beta = fhd.ranking_notes(rows, run="this quick run")
    assert gaussian.startswith("this quick run does NOT")  # the Fourier head behind: not the 16-seed ranking
    assert "gaussian KL" in gaussian and "Fourier head 0.51" in gaussian and "linear head 0.36" in gaussian
    assert "Fourier head 0.091, linear head 0.142" in gaussian  # the 16-seed figures, quoted
    assert fhd.FULL_COMMAND in gaussian and len(fhd.FULL_COMMAND.split("--seeds")[1].split()) == 16
    assert beta.startswith("this quick run ranks Fourier head ahead of linear head on beta KL")
    assert "NOT" not in beta


def test_density_short_runs_say_their_ranking_is_no_evidence(fhd, tmp_path, capsys):
    fhd.main(["--datasets", "gaussian", "--seeds", "1", "--epochs", "1", "--samples", "200", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert "1 epochs is short of the 500 the comparison uses" in out and "gaussian KL" in out
    assert err == ""  # no progress bar: the test's stderr is not a terminal


def test_periodic_notes_rank_the_models_and_the_best_constant_by_ood_mse(pe):
    def rows(task, fan, gated, mlp):
        return [{"task": task, "model": m, "ood_mse": v} for m, v in zip(pe.MODELS, (fan, gated, mlp))]

    # mod: FAN 1.5 and gated FAN 2.58 around the best constant, 25/12 ~ 2.08: gated FAN is no better than it
    sin, mod = pe.ranking_notes(rows("sin", 0.087, 0.0057, 123.0) + rows("mod", 1.5, 2.58, 11.1), 4000, run="r")
    assert sin.startswith("r ranks FAN (gated) ahead of FAN ahead of best constant ahead of MLP on sin OOD MSE")
    assert mod.startswith("r does NOT") and "FAN 0.206, FAN (gated) 0.336, best constant 2.08, MLP 56.5" in mod
    assert pe.FULL_COMMAND in mod
    _, mod = pe.ranking_notes(rows("sin", 0.087, 0.0057, 123.0) + rows("mod", 1.5, 2.0, 11.1), 4000, run="r")
    assert mod.startswith("r ranks FAN ahead of FAN (gated) ahead of best constant")
    assert pe.ranking_notes(rows("compound1", 1.0, 2.0, 3.0), 4000) == []  # no measured full run to compare with


def test_inr_notes_rank_training_and_held_out_psnr_with_bilinear_among_the_held_out(inr):
    def results(fkan, siren, ff):
        return {n: {"train_psnr": t, "heldout_psnr": h} for n, (t, h) in zip(inr.MODELS, (fkan, siren, ff))}

    train, held = inr.ranking_notes(results((38.0, 25.0), (37.0, 27.0), (35.0, 26.5)), 26.0, run="r")
    assert train.startswith("r ranks FKAN ahead of SIREN ahead of Fourier features on training-pixel PSNR")
    assert held.startswith("r ranks SIREN ahead of Fourier features ahead of bilinear interp ahead of FKAN")
    train, held = inr.ranking_notes(results((42.0, 23.0), (56.2, 22.5), (28.3, 23.8)), 23.2, run="r")
    assert train.startswith("r does NOT") and held.startswith("r does NOT")  # higher PSNR is better
    assert "SIREN 26.88, Fourier features 26.36, bilinear interp 25.91, FKAN 25.66" in held
    assert inr.ranking_notes({"SIREN": {"train_psnr": 30.0, "heldout_psnr": 25.0}}, 24.0) == []


@pytest.mark.parametrize("name", ["fourier_head_density", "periodic_extrapolation", "inr_image"])
def test_help_opens_with_a_short_description(name, capsys):
    with pytest.raises(SystemExit):
        load_example(name).parse_args(["--help"])
    text = capsys.readouterr().out
    description = text.split("\n\n", 1)[1].split("\noptions:")[0]
    assert len(description.splitlines()) <= 30 and "--quick" in description


def test_periodic_and_inr_runs_write_no_progress_bar_into_a_log(pe, inr, tmp_path, capsys):
    pe.main(["--tasks", "mod", "--seeds", "1", "--steps", "5", "--n-train", "100", "--n-test", "300",
             "--hidden", "8", "--out", str(tmp_path / "pe")])
    out, err = capsys.readouterr()
    assert err == "" and "on mod OOD MSE" in out
    inr.main(["--size", "32", "--steps", "2", "--hidden", "8", "--ff-features", "4", "--fkan-frequencies", "3",
              "--eval-every", "0", "--out", str(tmp_path / "inr")])
    out, err = capsys.readouterr()
    assert err == "" and "held-out-pixel PSNR" in out
