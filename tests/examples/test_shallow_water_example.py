"""examples/shallow_water_sfno.py: the height-map figure, bars on a terminal only, the ranking verdict."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from tests.examples._load import load_example

sw = load_example("shallow_water_sfno")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_height_maps_use_every_panel_and_show_each_error_against_the_truth():
    gen = torch.Generator().manual_seed(0)
    maps = {k: torch.randn(8, 16, generator=gen) for k in ("truth", "initial", "SFNO", "FNO")}
    fig = sw.height_maps_figure(maps, step=24, n_traj=4, dt_hours=1.0)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6  # 2 rows x (truth + 2 models): no empty corner
    for ax in panels:
        assert ax.axison and len(ax.get_images()) == 1 and ax.get_title()
    titles = [ax.get_title() for ax in panels]
    assert titles[:3] == ["truth, step 24 (24 h)", "SFNO, step 24 (24 h)", "FNO, step 24 (24 h)"]
    errors = {"persistence (step 0) - truth": maps["initial"] - maps["truth"],
              "SFNO - truth": maps["SFNO"] - maps["truth"], "FNO - truth": maps["FNO"] - maps["truth"]}
    assert titles[3:] == list(errors)
    for ax, want in zip(panels[3:], errors.values()):
        np.testing.assert_allclose(np.asarray(ax.get_images()[0].get_array()), want.numpy(), rtol=0, atol=0)
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.parametrize("progress, stream, drawn", [(None, io.StringIO, False), (None, _Terminal, True),
                                                     (False, _Terminal, False), (True, io.StringIO, True)])
def test_the_solver_bar_is_drawn_on_a_terminal_only(progress, stream, drawn):
    err = stream()
    with contextlib.redirect_stderr(err):
        fields = sw.simulate_balanced(1, 1, 8, 16, 1.0, 0, 0.0, progress=progress)
    assert fields.shape == (1, 2, 3, 8, 16) and torch.isfinite(fields).all()
    assert ("simulating 1 trajectories" in err.getvalue()) == drawn


def test_ranking_text_quotes_the_full_run_when_the_quick_run_disagrees():
    agree = sw.ranking_text({"SFNO": 0.5, "FNO": 0.9, "persistence": 1.6}, quick=True)
    assert agree.startswith("this quick run ranks SFNO ahead of FNO")
    disagree = sw.ranking_text({"SFNO": 1.56, "FNO": 1.51, "persistence": 1.57}, quick=True)
    assert disagree.startswith("this quick run does NOT rank SFNO and FNO as the full run")
    for text in (agree, disagree):
        full = ", ".join(f"{k} {v:.4g}" for k, v in sw.FULL_ERRORS.items())
        assert full in text and sw.FULL_COMMAND in text


def test_progress_option_defaults_to_terminal_only():
    assert sw.parse_args([]).progress is None
    assert sw.parse_args(["--no-progress"]).progress is False
    assert sw.parse_args(["--progress"]).progress is True
