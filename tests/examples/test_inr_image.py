"""The camera-image INR example at tiny settings: scoring path, parameter matching, resume, bilinear reference."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inr_image.py"


@pytest.fixture(scope="module")
def ex():
    spec = importlib.util.spec_from_file_location("_example_inr_image", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Lookup(torch.nn.Module):
    """Returns fixed values at the pixel a coordinate in [-1, 1]^2 falls on (an exact 'fit')."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = values
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        idx = ((x + 1) / 2 * (self.values.shape[0] - 1)).round().long()
        return self.values[idx[..., 0], idx[..., 1]][..., None] + 0 * self.unused


def test_scoring_decodes_the_signed_targets(ex, tmp_path):
    """A model that outputs the [-1, 1] training targets exactly scores round-off-level error and SSIM 1."""
    image = ex.load_camera(32)
    args = argparse.Namespace(steps=0, checkpoint_every=1)
    r = ex.fit("exact", _Lookup(2 * image - 1), 1e-3, ex.grid_coords(32), image, args, tmp_path)
    assert r["train_psnr"] > 100 and r["heldout_psnr"] > 100  # float32 round-off only
    assert r["train_ssim"] == pytest.approx(1.0) and r["heldout_ssim"] == pytest.approx(1.0)
    # Outputs on the [0, 1] scale instead would be wrong by a large offset.
    r = ex.fit("unsigned", _Lookup(image), 1e-3, ex.grid_coords(32), image, args, tmp_path)
    assert r["train_psnr"] < 15


def test_bad_size_names_the_argument(ex):
    with pytest.raises(ValueError, match=r"--size must divide 512 and be >= 32 .*got 48"):
        ex.load_camera(48)


def test_bilinear_reference_matches_a_naive_loop(ex):
    n = 24  # the SSIM window needs 11x11 sub-images
    image = torch.rand(n, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    held, last = [], n - 2  # the last even row / column is repeated past the edge
    for i in range(1, n, 2):
        for j in range(1, n, 2):
            up, left, down, right = i - 1, j - 1, min(i + 1, last), min(j + 1, last)
            corners = [(up, left), (up, right), (down, left), (down, right)]
            held.append(sum(image[a, b] for a, b in corners) / 4)
    mse = torch.mean((torch.stack(held) - image[1::2, 1::2].flatten()) ** 2).item()
    assert ex.bilinear_reference(image)["heldout_psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-10)


def test_tiny_run_matches_parameters_writes_outputs_and_resumes(ex, tmp_path, monkeypatch):
    argv = ["--size", "32", "--steps", "3", "--hidden", "16", "--ff-features", "8", "--fkan-frequencies", "4",
            "--checkpoint-every", "2", "--out", str(tmp_path)]
    summary = ex.main(argv)
    res = summary["results"]
    assert list(res) == list(ex.MODELS)
    for name, r in res.items():
        assert r["steps"] == 3 and abs(r["params"] - res["SIREN"]["params"]) <= 0.05 * res["SIREN"]["params"], name
        assert all(math.isfinite(r[k]) for k in ("train_psnr", "heldout_psnr", "train_ssim", "heldout_ssim"))
    assert json.loads((tmp_path / "results.json").read_text())["config"]["size"] == 32
    assert (tmp_path / "reconstructions.png").stat().st_size > 0

    def no_step(*_, **__):
        raise AssertionError("a finished run must resume from its checkpoint, not train again")

    monkeypatch.setattr(torch.optim.Adam, "step", no_step)
    again = ex.main(argv)["results"]
    for name in ex.MODELS:
        assert again[name]["heldout_psnr"] == pytest.approx(res[name]["heldout_psnr"])


def test_resume_compares_only_the_options_of_that_model(ex):
    base = ex.parse_args(["--size", "32", "--steps", "10"])
    state = {"config": vars(base), "lr": 1e-3, "step": 10}
    other_fkan = ex.parse_args(["--size", "32", "--steps", "10", "--fkan-frequencies", "7"])
    assert ex._resumable("SIREN", state, other_fkan, 1e-3) and ex._resumable("FourierFeatures", state, other_fkan, 1e-3)
    assert not ex._resumable("FKAN", state, other_fkan, 1e-3)
    assert not ex._resumable("SIREN", state, base, 1e-4)  # another learning rate
    assert not ex._resumable("SIREN", state, ex.parse_args(["--size", "32", "--steps", "10", "--layers", "4"]), 1e-3)
    assert ex._resumable("SIREN", state, ex.parse_args(["--size", "32", "--steps", "20"]), 1e-3)  # more steps
    assert not ex._resumable("SIREN", state, ex.parse_args(["--size", "32", "--steps", "5"]), 1e-3)


def test_exp_schedule_decays_every_model_to_a_tenth(ex, tmp_path, adam_lrs):
    """--schedule exp: the lr used at step s is lr * 0.1^(s / steps), reaching lr / 10 at the end."""
    seen = adam_lrs
    steps = 4
    ex.main(["--size", "32", "--steps", str(steps), "--hidden", "8", "--ff-features", "4", "--fkan-frequencies", "3",
             "--schedule", "exp", "--lr", "1e-3", "--out", str(tmp_path)])
    expected = [1e-3 * 0.1 ** (s / steps) for s in range(steps)] * len(ex.MODELS)
    assert seen == pytest.approx(expected, rel=1e-12)
    assert seen[steps - 1] == pytest.approx(1e-4 * 10 ** (1 / steps))


def test_widening_fkan_is_matched_to_the_budget(ex):
    args = ex.parse_args(["--size", "32", "--fkan-frequencies", "4", "--fkan-widths", "widening"])
    budget = ex.count_params(ex.build("SIREN", 64, args))
    width = ex.matched_width("FKAN", budget, args)
    model = ex.build("FKAN", width, args)
    assert model.widths == (width, 2 * width, 2 * width, 2 * width, 4 * width)
    assert abs(ex.count_params(model) - budget) <= 0.05 * budget


def test_fkan_first_width_narrows_only_the_fourier_layer_and_matches_the_budget(ex):
    args = ex.parse_args(["--size", "32", "--fkan-frequencies", "4", "--fkan-directions", "6", "--fkan-first-width", "8"])
    budget = ex.count_params(ex.build("SIREN", 64, args))
    width = ex.matched_width("FKAN", budget, args)
    model = ex.build("FKAN", width, args)
    assert model.widths == (8, width, width) and model.kan.weight.shape[:2] == (8, 6)  # (O, I) of the KAN layer
    # hand count: KAN 8 * 6 * 2 * 4 + 8, LayerNorm 2 * 8, MLP 8 -> H -> H, output H -> 1
    expected = 8 * 6 * 2 * 4 + 8 + 2 * 8 + (8 * width + width) + (width * width + width) + (width + 1)
    assert ex.count_params(model) == expected and abs(expected - budget) <= 0.05 * budget
    state = {"config": vars(ex.parse_args(["--size", "32", "--fkan-frequencies", "4", "--fkan-directions", "6"])),
             "lr": 1e-3, "step": 0}
    assert not ex._resumable("FKAN", state, args, 1e-3)  # another first width: another checkpoint


def test_crop_fits_the_central_pixels_at_their_full_grid_coordinates(ex, tmp_path, monkeypatch):
    seen = {}
    real_fit = ex.fit

    def recording_fit(name, model, lr, coords, image, args, out):
        seen["coords"], seen["image"] = coords, image
        return real_fit(name, model, lr, coords, image, args, out)

    monkeypatch.setattr(ex, "fit", recording_fit)
    ex.main(["--size", "64", "--crop", "32", "--steps", "1", "--models", "SIREN", "--hidden", "8", "--out", str(tmp_path)])
    full, axis = ex.load_camera(64), torch.linspace(-1, 1, 64)
    assert torch.equal(seen["image"], full[16:48, 16:48])  # (64 - 32) / 2 = 16 pixels off each edge
    assert torch.equal(seen["coords"][:, 0, 0], axis[16:48]) and torch.equal(seen["coords"][0, :, 1], axis[16:48])


@pytest.mark.parametrize("crop", ["31", "16", "128"])
def test_bad_crop_names_the_argument(ex, crop, capsys):
    with pytest.raises(SystemExit):
        ex.parse_args(["--size", "64", "--crop", crop])
    assert "--crop must be even and lie in [32, --size=64]" in capsys.readouterr().err


def test_fkan_directions_option_builds_the_projected_model_and_is_its_own_checkpoint(ex):
    args = ex.parse_args(["--size", "32", "--fkan-frequencies", "4", "--fkan-directions", "6"])
    budget = ex.count_params(ex.build("SIREN", 64, args))
    model = ex.build("FKAN", ex.matched_width("FKAN", budget, args), args)
    assert model.directions == 6 and model.kan.weight.shape[1] == 6  # series on 6 projections
    assert abs(ex.count_params(model) - budget) <= 0.05 * budget
    assert ex.build("FKAN", 8, ex.parse_args(["--size", "32"])).directions is None  # default: the paper's axes
    state = {"config": vars(ex.parse_args(["--size", "32"])), "lr": 1e-3, "step": 0}
    assert not ex._resumable("FKAN", state, args, 1e-3) and ex._resumable("SIREN", state, args, 1e-3)


def test_eval_every_records_the_scores_a_shorter_run_ends_with_and_keeps_them_on_resume(ex, tmp_path):
    """History point s of a run equals the final scores of a separate run stopped at step s."""
    common = ["--size", "32", "--hidden", "8", "--models", "SIREN", "FKAN", "--fkan-frequencies", "3"]
    long = ex.main(common + ["--steps", "4", "--eval-every", "2", "--checkpoint-every", "2",
                             "--out", str(tmp_path / "long")])["results"]
    for steps in (2, 4):
        short = ex.main(common + ["--steps", str(steps), "--eval-every", "0", "--out", str(tmp_path / f"s{steps}")])
        for name, r in short["results"].items():
            assert r["history"] == []  # --eval-every 0 records nothing
            point = dict((s, (a, b)) for s, a, b in long[name]["history"])[steps]
            assert point == pytest.approx((r["train_psnr"], r["heldout_psnr"]), rel=1e-6), (name, steps)
        assert not (tmp_path / f"s{steps}" / "frontier.png").exists()
    assert [s for s, _, _ in long["SIREN"]["history"]] == [2, 4]
    assert (tmp_path / "long" / "frontier.png").stat().st_size > 0
    # Growing --steps resumes from the checkpoint at 4 and extends the history without repeating it.
    grown = ex.main(common + ["--steps", "6", "--eval-every", "2", "--checkpoint-every", "2",
                              "--out", str(tmp_path / "long")])["results"]
    assert [s for s, _, _ in grown["FKAN"]["history"]] == [2, 4, 6]
    assert grown["FKAN"]["history"][:2] == long["FKAN"]["history"]


def test_bad_eval_every_names_the_argument(ex, capsys):
    with pytest.raises(SystemExit):
        ex.parse_args(["--eval-every", "-1"])
    assert "--eval-every must be >= 0, got -1" in capsys.readouterr().err


def test_quick_sets_defaults_but_explicit_values_win(ex):
    quick = ex.parse_args(["--quick"])
    assert (quick.size, quick.steps, quick.hidden) == (64, 200, 128)
    mixed = ex.parse_args(["--quick", "--steps", "5", "--size", "128", "--hidden", "64"])
    assert (mixed.size, mixed.steps, mixed.hidden) == (128, 5, 64)
    full = ex.parse_args([])
    assert (full.size, full.steps, full.hidden) == (256, 500, 256)


def test_exp_schedule_does_not_resume_under_another_step_count(ex):
    """The exp decay rate is 0.1^(1 / steps): growing --steps would jump the lr back up mid-run."""
    for schedule, resumable in (("exp", False), ("constant", True)):
        old = ex.parse_args(["--size", "32", "--steps", "10", "--schedule", schedule])
        state = {"config": vars(old), "lr": 1e-3, "step": 10}
        grown = ex.parse_args(["--size", "32", "--steps", "20", "--schedule", schedule])
        assert ex._resumable("SIREN", state, grown, 1e-3) is resumable, schedule
        assert ex._resumable("SIREN", state, old, 1e-3)


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1, got 0"),
    (["--size", "100"], "--size must divide 512 and be >= 32"),
    (["--steps", "-1"], "--steps must be >= 0, got -1"),
    (["--hidden", "0"], "--hidden must be >= 1, got 0"),
    (["--lr", "0"], "--lr must be > 0, got 0.0"),
    (["--ff-sigma", "-1"], "--ff-sigma must be > 0, got -1.0"),
    (["--fkan-frequencies", "0"], "--fkan-frequencies must be >= 1, got 0"),
    (["--fkan-directions", "1"], "--fkan-directions must be >= 2"),
    (["--fkan-first-width", "0"], "--fkan-first-width must be >= 1 and needs --fkan-widths uniform, got 0"),
    (["--fkan-first-width", "8", "--fkan-widths", "widening"], "got 8 with --fkan-widths widening"),
])
def test_bad_options_are_argparse_errors_naming_the_option(ex, argv, message, capsys):
    with pytest.raises(SystemExit):
        ex.parse_args(argv)
    assert message in capsys.readouterr().err
