"""Progress bars that appear on a terminal only."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

from spectral.checks import check_bool

__all__ = ["progress_bar"]


def progress_bar(iterable: Iterable[Any] | None = None, *, progress: bool | None = None,
                 file: TextIO | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar that is drawn only where someone watches it.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over, as for :class:`tqdm.tqdm`; leave it out and call
        ``update`` for a manual bar.
    progress : bool or None
        ``True`` always draws the bar, ``False`` never; ``None`` (the default, what an
        example's ``--progress`` / ``--no-progress`` leaves when neither is given) draws it
        only when ``file`` is a terminal, so a log redirected to a file holds no bar lines.
    file : text stream, optional
        Where the bar goes (default ``sys.stderr``).
    **kwargs
        Passed to :class:`tqdm.tqdm` (``total``, ``desc``, ``leave``, ...).

    Returns
    -------
    tqdm.tqdm
        The bar (disabled bars still iterate and count).

    Examples
    --------
    >>> import io
    >>> log = io.StringIO()
    >>> sum(progress_bar(range(4), file=log))  # not a terminal: no bar written
    6
    >>> log.getvalue()
    ''
    """
    progress = check_bool("progress", progress, allow_none=True)
    stream = sys.stderr if file is None else file
    if progress is None:
        isatty = getattr(stream, "isatty", None)
        progress = bool(isatty()) if callable(isatty) else False
    return tqdm(iterable, file=stream, disable=not progress, **kwargs)
