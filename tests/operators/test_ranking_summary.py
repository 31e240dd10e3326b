"""operators.evaluation.ranking_summary: the plain-text verdict on a small run's ranking."""

from __future__ import annotations

import pytest

from operators.evaluation import ranking_summary

REFERENCE = {"SFNO": 0.21, "FNO": 0.63}
COMMAND = "python examples/shallow_water_sfno.py"


def test_agreeing_run_is_named_as_agreeing_and_quotes_both_sets_of_figures() -> None:
    text = ranking_summary({"FNO": 0.9, "SFNO": 0.45, "persistence": 1.5}, REFERENCE, metric="error",
                           command=COMMAND)
    assert text.startswith("this run ranks SFNO ahead of FNO on error (SFNO 0.45, FNO 0.9)")
    assert "the full run does (SFNO 0.21, FNO 0.63; python examples/shallow_water_sfno.py)" in text
    assert "NOT" not in text and "persistence" not in text


def test_disagreeing_run_says_so_and_quotes_the_reference_and_its_command() -> None:
    text = ranking_summary({"SFNO": 1.56, "FNO": 1.51}, REFERENCE, metric="error after 24 steps",
                           command=COMMAND, run="this quick run")
    assert text.startswith("this quick run does NOT rank SFNO and FNO as the full run does "
                           "(SFNO ahead of FNO on error after 24 steps)")
    assert "SFNO 1.56, FNO 1.51" in text and "budget is too small to rank them" in text
    assert "The full run measured SFNO 0.21, FNO 0.63; python examples/shallow_water_sfno.py." in text


def test_a_tie_in_this_run_is_no_ranking() -> None:
    assert "does NOT" in ranking_summary({"SFNO": 0.5, "FNO": 0.5}, REFERENCE, metric="e", command="c")


@pytest.mark.parametrize("higher, expected", [(False, "a ahead of b ahead of c"), (True, "c ahead of b ahead of a")])
def test_three_methods_in_either_direction(higher: bool, expected: str) -> None:
    reference = {"b": 2.0, "a": 1.0, "c": 3.0}
    scores = {"a": 10.0, "b": 20.0, "c": 30.0}  # same order as the reference, other values
    text = ranking_summary(scores, reference, metric="m", command="c", higher_is_better=higher)
    assert text.startswith(f"this run ranks {expected} on m")
    swapped = ranking_summary({"a": 20.0, "b": 10.0, "c": 30.0}, reference, metric="m", command="c",
                              higher_is_better=higher)
    assert "does NOT" in swapped


@pytest.mark.parametrize(
    "scores, reference, error, match",
    [
        ({"SFNO": 0.1}, {"SFNO": 0.2}, ValueError, "at least two"),
        ({"SFNO": 0.1}, REFERENCE, ValueError, r"lacks the reference methods \['FNO'\]"),
        ({"SFNO": float("nan"), "FNO": 0.1}, REFERENCE, ValueError, "finite"),
        ({"SFNO": "0.1", "FNO": 0.1}, REFERENCE, TypeError, "real number"),
        ({"SFNO": 0.1, "FNO": 0.2}, {"SFNO": 0.3, "FNO": 0.3}, ValueError, "tied"),
        ([0.1, 0.2], REFERENCE, TypeError, "mapping"),
    ],
)
def test_bad_input_is_named(scores, reference, error, match) -> None:
    with pytest.raises(error, match=match):
        ranking_summary(scores, reference, metric="e", command="c")
