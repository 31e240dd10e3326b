"""Command-line options of experiment scripts: a parser with full / ``--quick`` defaults and argparse checks.

Legend: ``N`` grid points along one axis, ``m`` kept Fourier modes per axis.

Every check here reports a bad value through ``parser.error`` (exit status 2, the usage
line and one message on stderr that starts with the option's command-line spelling),
before the script generates data or trains; the rules themselves are those of
:mod:`spectral.checks` and :func:`spectral.modes.max_modes`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from spectral.checks import check_int, check_number
from spectral.modes import max_modes

__all__ = [
    "SIZE_OPTIONS",
    "experiment_parser",
    "apply_defaults",
    "option_name",
    "check_int_option",
    "check_number_option",
    "check_modes_option",
]

#: Options that :func:`apply_defaults` checks as sizes (ints >= 1) wherever a parser has them.
SIZE_OPTIONS = ("n_train", "n_test", "epochs", "batch_size", "width", "modes", "layers")


def option_name(dest: str) -> str:
    """The command-line spelling of an argparse ``dest``.

    >>> option_name("n_train")
    '--n-train'
    """
    return "--" + dest.replace("_", "-")


def _fail(parser: argparse.ArgumentParser, error: Exception) -> NoReturn:
    parser.error(str(error))
    raise AssertionError("unreachable")  # pragma: no cover  (parser.error exits)


def check_int_option(
    parser: argparse.ArgumentParser, args: argparse.Namespace, dest: str, min: int | None = 1, *,
    max: int | None = None,
) -> int:
    """``args.<dest>`` if it is an int in ``[min, max]``, else ``parser.error`` naming the option.

    The rule is :func:`spectral.checks.check_int`'s; the message starts with the option,
    e.g. ``--epochs must be an int >= 1, got 0``.

    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--n-train", type=int)
    >>> check_int_option(p, p.parse_args(["--n-train", "12"]), "n_train")
    12
    """
    try:
        return check_int(option_name(dest), getattr(args, dest), min=min, max=max)
    except (TypeError, ValueError) as error:
        _fail(parser, error)


def check_number_option(
    parser: argparse.ArgumentParser, args: argparse.Namespace, dest: str, *, min: float | None = 0,
    min_open: bool = True, max: float | None = None, max_open: bool = False,
) -> float:
    """``args.<dest>`` if it is a finite number in the range, else ``parser.error`` naming the option.

    By default the range is ``> 0``; ``min_open=False`` allows ``min`` itself (``>= 0``).
    The rule is :func:`spectral.checks.check_number`'s (NaN and infinities never pass),
    e.g. ``--lr must be > 0, got -1.0``.
    """
    try:
        return check_number(option_name(dest), getattr(args, dest), min=min, min_open=min_open, max=max,
                            max_open=max_open)
    except (TypeError, ValueError) as error:
        _fail(parser, error)


def check_modes_option(
    parser: argparse.ArgumentParser, modes: int, grids: Mapping[int, str], *, name: str = "--modes"
) -> None:
    """``parser.error`` unless every grid admits ``modes``: ``m <= (N + 1) // 2`` (Nyquist excluded).

    ``grids`` maps each grid size ``N`` the model runs on (per axis) to the option that set
    it, so the message names both. The rule is :func:`spectral.modes.max_modes`, which a
    spectral layer applies to its input grid: checking it here reports a bad combination
    before any data are generated.
    """
    for n, source in sorted(grids.items()):
        if modes > max_modes(n):
            parser.error(
                f"{name}={modes} exceeds the {max_modes(n)} modes a grid of {n} points ({source}) admits: "
                f"{name} must be <= ({n} + 1) // 2 = {max_modes(n)} (Nyquist excluded)"
            )


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (as a user would type it)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return os.fspath(path)


def experiment_parser(
    description: str,
    out: str | os.PathLike,
    full: Mapping[str, Any] | None = None,
    quick: Mapping[str, Any] | None = None,
    helps: Mapping[str, str] | None = None,
) -> argparse.ArgumentParser:
    """The options every training script shares, with full and ``--quick`` defaults.

    Options: ``--quick``, ``--n-train``, ``--n-test``, ``--epochs``, ``--batch-size``,
    ``--lr``, ``--width``, ``--modes``, ``--layers`` (default None: filled in by
    :func:`apply_defaults` from ``quick`` or ``full``), ``--device``, ``--seed`` (0),
    ``--out`` (default ``out``), ``--cache-dir``, ``--resume`` and ``--progress`` /
    ``--no-progress``.

    Parameters
    ----------
    description : str
        The help's description (e.g. the script's ``__doc__``), shown as written.
    out : path
        The default output folder.
    full, quick : mapping, optional
        The defaults the script passes to :func:`apply_defaults`, by dest name: the help
        of each shared option states both, e.g. ``(default 1000; --quick 300)``.
    helps : mapping, optional
        Replacement help texts of shared options, by dest name.

    >>> p = experiment_parser("demo", "runs/demo", {"epochs": 100}, {"epochs": 5})
    >>> p.parse_args(["--quick"]).epochs is None
    True
    """
    full, quick, helps = dict(full or {}), dict(quick or {}), dict(helps or {})

    def text(key: str, default_help: str) -> str:
        words = helps.get(key, default_help)
        if key not in full:
            return words
        big, small = full[key], quick.get(key, full[key])
        if big == small:
            return f"{words} (default {_shown(big)}, with or without --quick)"
        return f"{words} (default {_shown(big)}; --quick {_shown(small)})"

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small data and model: a couple of minutes on 2 CPU cores (sets the --quick defaults below; "
                        "explicit options win)")
    p.add_argument("--n-train", type=int, help=text("n_train", "training samples, the first ones generated"))
    p.add_argument("--n-test", type=int, help=text("n_test", "test samples, the last ones generated"))
    p.add_argument("--epochs", type=int, help=text("epochs", "training epochs"))
    p.add_argument("--batch-size", type=int, help=text("batch_size", "batch size"))
    p.add_argument("--lr", type=float, help=text("lr", "AdamW learning rate, cosine schedule"))
    p.add_argument("--width", type=int, help=text("width", "hidden channels of the FNO"))
    p.add_argument("--modes", type=int, help=text("modes", "kept Fourier modes |k| < modes per axis"))
    p.add_argument("--layers", type=int, help=text("layers", "Fourier blocks"))
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of the model (default 0)")
    p.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default {_shown_path(Path(out))})")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="data cache folder (default $SPECTRAL_OPERATORS_CACHE_DIR or ~/.cache/spectral-operators)")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>/checkpoint/checkpoint.pt; refuses options other than those recorded "
                        "in <out>/args.json")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars (default: only on a terminal)")
    return p


def apply_defaults(
    parser: argparse.ArgumentParser, args: argparse.Namespace, full: Mapping[str, Any], quick: Mapping[str, Any]
) -> argparse.Namespace:
    """Fill every option left as None from ``quick`` (with ``args.quick``) or ``full``; check the shared ones.

    An explicit value always wins over both. Then, for those of the parser's options that
    are set: the :data:`SIZE_OPTIONS` must be ints >= 1, ``lr`` finite and > 0 and
    ``seed`` an int >= 0, else ``parser.error`` names the option. Returns ``args``.

    >>> p = experiment_parser("demo", "runs/demo")
    >>> args = apply_defaults(p, p.parse_args(["--quick", "--lr", "0.1"]), {"epochs": 100, "lr": 1e-3},
    ...                       {"epochs": 5, "lr": 1e-2})
    >>> args.epochs, args.lr
    (5, 0.1)
    """
    for key, value in (quick if getattr(args, "quick", False) else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for key in SIZE_OPTIONS:
        if getattr(args, key, None) is not None:
            check_int_option(parser, args, key)
    if getattr(args, "lr", None) is not None:
        check_number_option(parser, args, "lr")
    if hasattr(args, "seed"):
        check_int_option(parser, args, "seed", 0)
    return args
