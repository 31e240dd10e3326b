"""Does a small run rank methods as a reference run did? A plain-text verdict (:mod:`operators.evaluation`).

Legend: none (scores are plain numbers, lower is better unless ``higher_is_better``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from spectral.checks import check_bool, check_number

__all__ = ["ranking_summary"]


def _scores(name: str, scores: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(scores, Mapping):
        raise TypeError(f"{name} must be a mapping of method name -> score, got {type(scores).__name__}")
    return {str(k): check_number(f"{name}[{k!r}]", v) for k, v in scores.items()}


def _figures(scores: Mapping[str, float], names: Sequence[str]) -> str:
    return ", ".join(f"{n} {scores[n]:.4g}" for n in names)


def ranking_summary(scores: Mapping[str, float], reference: Mapping[str, float], *, metric: str,
                    command: str, higher_is_better: bool = False, run: str = "this run",
                    reference_run: str = "the full run") -> str:
    """One paragraph saying whether ``scores`` rank the methods as ``reference`` does.

    The reference ranking is the order of the methods named in ``reference`` by their
    reference scores (best first). If ``scores`` put those methods in the same order,
    the text says so and quotes both sets of figures; otherwise it says plainly that
    ``run`` does not show the reference ranking, that its budget is too small to rank
    them, and quotes the reference figures and the ``command`` that measured them.
    Methods in ``scores`` but not in ``reference`` (a baseline row, say) are ignored.

    Parameters
    ----------
    scores : mapping of str to float
        This run's score per method.
    reference : mapping of str to float
        The reference run's measured score per method (at least two); each must also
        be in ``scores``.
    metric : str
        What the scores are, e.g. ``"error after 24 steps"`` or ``"test MSE"``.
    command : str
        The command that made the reference figures.
    higher_is_better : bool
        ``False`` (default) for errors and losses, ``True`` for accuracies.
    run, reference_run : str
        How the text names the two runs.

    Returns
    -------
    str
        A paragraph opening with ``"<run> ranks ..."`` when the rankings agree and with
        ``"<run> does NOT rank ..."`` when they do not.

    Raises
    ------
    TypeError
        Scores that are not real numbers.
    ValueError
        Fewer than two reference methods, a reference method missing from ``scores``,
        a NaN or infinite score, or ties in the reference.

    Examples
    --------
    >>> print(ranking_summary({"SFNO": 0.4, "FNO": 0.9}, {"SFNO": 0.21, "FNO": 0.63},
    ...                       metric="error", command="python sw.py"))
    this run ranks SFNO ahead of FNO on error (SFNO 0.4, FNO 0.9), as the full run does (SFNO 0.21, FNO 0.63; python sw.py).
    """
    scores, reference = _scores("scores", scores), _scores("reference", reference)
    higher_is_better = check_bool("higher_is_better", higher_is_better)
    if len(reference) < 2:
        raise ValueError(f"reference must hold at least two methods, got {sorted(reference)}")
    missing = [n for n in reference if n not in scores]
    if missing:
        raise ValueError(f"scores lacks the reference methods {missing}; it has {sorted(scores)}")
    sign = -1.0 if higher_is_better else 1.0
    expected = sorted(reference, key=lambda n: sign * reference[n])
    if any(reference[a] == reference[b] for a, b in zip(expected, expected[1:])):
        raise ValueError(f"reference has tied scores, so it gives no ranking: {reference}")
    got = sorted(expected, key=lambda n: sign * scores[n])
    quoted = f"{_figures(reference, expected)}; {command}"
    if got == expected and all(scores[a] != scores[b] for a, b in zip(got, got[1:])):
        order = " ahead of ".join(expected)
        return (f"{run} ranks {order} on {metric} ({_figures(scores, expected)}), "
                f"as {reference_run} does ({quoted}).")
    names = ", ".join(expected[:-1]) + f" and {expected[-1]}"
    return (f"{run} does NOT rank {names} as {reference_run} does ({' ahead of '.join(expected)} on {metric}): "
            f"it has {_figures(scores, expected)}; its budget is too small to rank them. "
            f"{reference_run[0].upper() + reference_run[1:]} measured {quoted}.")
