"""Shared benchmark harness: timing, peak memory, the ratio table and the JSON record.

Every suite times our code and its baseline in the same process with
``torch.utils.benchmark.Timer.blocked_autorange`` (warm-up, CUDA sync, medians) and
reports a ratio that reads the same way in every row: above 1, ours is better. For
time, memory and errors (lower is better) it is ``baseline / ours``; for rows marked
``higher_is_better`` (accuracy) it is ``ours / baseline``.
"""

from __future__ import annotations

import ast
import ctypes
import datetime as _dt
import json
import math
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils import benchmark as tbench

__all__ = [
    "BenchContext", "Row", "time_median", "one_thread_cpu_ms", "peak_memory_bytes", "tensor_peak_bytes", "compare", "print_table",
    "ratio_legend", "imported_sources", "default_output_path", "machine_info", "write_json", "check_regressions",
    "load_rows",
]


@dataclass
class BenchContext:
    """What a suite gets: the device, whether to run a short version, and the seed."""

    device: torch.device
    quick: bool = False
    seed: int = 0
    min_run_time: float = 0.5
    extra: dict = field(default_factory=dict)  # suite-specific results for the JSON record


@dataclass
class Row:
    """One measured case: ours against a baseline, one phase (e.g. "fwd", "fwd+bwd").

    ``higher_is_better`` is False for time, memory and errors (the default) and True for
    scores such as accuracy; :attr:`ratio` uses it so that above 1 always means ours is better.
    ``max_error`` (optional) is the correctness column: the max absolute error of our
    output against a float64 reference of the same operation.
    """

    suite: str
    case: str
    phase: str
    ours: str
    baseline: str
    ours_value: float
    baseline_value: float
    unit: str = "ms"
    params: dict = field(default_factory=dict)
    higher_is_better: bool = False
    max_error: float | None = None

    @property
    def ratio(self) -> float:
        """Above 1 means ours is better: ``ours / baseline`` if higher is better, else ``baseline / ours``."""
        if self.higher_is_better:
            return self.ours_value / self.baseline_value if self.baseline_value else float("nan")
        return self.baseline_value / self.ours_value if self.ours_value else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_median(fn: Callable[[], object], ctx: BenchContext) -> float:
    """Median seconds per call of ``fn`` (warm-up and CUDA sync included)."""
    fn()  # warm-up (plans, caches, lazy init)
    _sync(ctx.device)
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn})
    return timer.blocked_autorange(min_run_time=ctx.min_run_time).median


_LIBC = None


def one_thread_cpu_ms(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Fastest single-thread process-CPU milliseconds per call of each function (CPU only).

    One warm-up call each at one thread, then ``rounds`` rounds calling every function in
    turn. On a machine shared with other jobs, wall time mostly measures the scheduler
    (and multi-threaded runs wait for descheduled threads); one thread's CPU time does
    not, so ratios from it are stable where wall-time ratios are not.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    best = dict.fromkeys(fns, float("inf"))
    try:
        for fn in fns.values():
            fn()
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.process_time()
                fn()
                best[name] = min(best[name], (time.process_time() - start) * 1e3)
    finally:
        torch.set_num_threads(threads)
    return best


def _libc():
    global _LIBC
    if _LIBC is None and platform.system() == "Linux":
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            # Fixed mmap/trim thresholds: freed large blocks go back to the OS, so RSS growth
            # measures each call's own peak instead of what earlier calls left cached.
            _LIBC.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
            _LIBC.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
        except OSError:
            _LIBC = False
    return _LIBC or None


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
    raise KeyError(key)


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory one call of ``fn`` adds on top of what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated`` growth. CPU (Linux): growth of the
    process's resident-set high-water mark (``VmHWM``, reset through
    ``/proc/self/clear_refs``), with glibc's mmap threshold fixed so freed blocks are
    returned. Returns NaN where neither is available.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    libc = _libc()
    if libc is None or not os.path.exists("/proc/self/clear_refs"):
        return float("nan")
    libc.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return float("nan")
    base = _status_kb("VmRSS:")
    fn()
    return float(max(_status_kb("VmHWM:") - base, 0) * 1024)


def tensor_peak_bytes(fn: Callable[[], object]) -> float:
    """Peak of live tensor memory during one call of ``fn``, above what was live before it (CPU).

    From the torch profiler's memory timeline (the CPU analogue of CUDA
    ``max_memory_allocated``: torch's own tensors only, not the FFT libraries' scratch),
    read through its public JSON export (``profile.export_memory_timeline``: timestamps
    and bytes per category). ``fn`` runs twice under the profiler and the second call is
    measured: the first profiled call reads higher (SDPA's fwd+bwd at N = 8192: 162 MB,
    then 66 MB every time). NaN if the profiler cannot give it.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the export is marked deprecated in favour of a CUDA-only API
            with torch.profiler.profile(profile_memory=True, record_shapes=True, with_stack=True):
                fn()
            with torch.profiler.profile(profile_memory=True, record_shapes=True, with_stack=True) as prof:
                fn()
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "timeline.json")
                prof.export_memory_timeline(path, device="cpu")
                with open(path) as fh:
                    _, sizes = json.load(fh)
        totals = [sum(s) for s in sizes]
        return float(max(totals) - totals[0])
    except Exception:  # noqa: BLE001 - a profiler that cannot give the timeline: NaN, not a failed suite
        return float("nan")


def compare(
    suite: str,
    case: str,
    phase: str,
    ours: tuple[str, Callable[[], object]],
    baseline: tuple[str, Callable[[], object]],
    ctx: BenchContext,
    params: dict | None = None,
) -> Row:
    """Time ``ours`` and ``baseline`` and return the row (milliseconds).

    The two are timed in alternating rounds (3, or 1 with ``ctx.quick``) and each keeps
    its fastest round median, so a burst of load on a shared machine hits both alike.
    """
    rounds = 1 if ctx.quick else 3
    sub = BenchContext(ctx.device, ctx.quick, ctx.seed, ctx.min_run_time / rounds)
    t_ours = t_base = float("inf")
    for _ in range(rounds):
        t_ours = min(t_ours, time_median(ours[1], sub))
        t_base = min(t_base, time_median(baseline[1], sub))
    return Row(suite, case, phase, ours[0], baseline[0], t_ours * 1e3, t_base * 1e3, "ms", dict(params or {}))


def ratio_legend(rows: list[Row]) -> str:
    """How to read the ratio column of ``rows`` (one line, for a table title)."""
    if not any(r.higher_is_better for r in rows):
        return "ratio = baseline / ours"
    if all(r.higher_is_better for r in rows):
        return "ratio = ours / baseline (higher is better)"
    return "ratio > 1: ours better (baseline / ours where lower is better, ours / baseline where higher is better)"


def print_table(rows: list[Row], title: str = "") -> None:
    """Print the rows as an aligned table with the ratio column.

    If any row is ``higher_is_better``, a ``better`` column says for each row whether the
    higher or the lower value wins (the ratio is above 1 when ours wins either way).
    """
    if title:
        print(f"\n== {title} ==")
    mixed = any(r.higher_is_better for r in rows)
    better = ("better",) if mixed else ()
    errors = any(r.max_error is not None for r in rows)
    header = ("case", "phase", "ours", "baseline", "ours", "baseline", "unit", *better, "ratio") + (
        ("ours err vs f64",) if errors else ()
    )
    lines = [header] + [
        (r.case, r.phase, r.ours, r.baseline, f"{r.ours_value:.3f}", f"{r.baseline_value:.3f}", r.unit)
        + ((("higher" if r.higher_is_better else "lower"),) if mixed else ())
        + (f"{r.ratio:.2f}x",)
        + (("" if r.max_error is None else f"{r.max_error:.1e}",) if errors else ())
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for j, line in enumerate(lines):
        print("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _module_file(root: Path, module: str) -> Path | None:
    """The source file of a library module under ``root`` (package ``__init__.py`` or ``.py``), else None."""
    base = root.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, module: str, library: str) -> set[str]:
    """Library modules named by the import statements of ``path`` (module ``module``), at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            source = ".".join(p for p in (base, node.module or "") if p)
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {m for m in found if m == library or m.startswith(library + ".")}


def imported_sources(modules: tuple[str, ...], root: Path, library: str = "spectral") -> dict[str, Path]:
    """Module name -> source file under ``root`` for ``modules`` and every ``library`` module they import.

    Follows the import statements (absolute and relative, at any depth) transitively, without
    importing anything; a parent package's ``__init__.py`` is included only where it is imported
    by name (importing the library has no side effects). For cache keys: a change to any file
    the benchmarked code runs changes the key.
    """
    todo, seen, files = list(modules), set(), {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(root, module)
        if path is not None:
            files[module] = path
            todo.extend(_imported_modules(path, module, library))
    return {m: files[m] for m in sorted(files)}


def default_output_path(name: str, device: torch.device | str, quick: bool, suffix: str = "json") -> Path:
    """``runs/bench-<name>-<device>[-quick].<suffix>``: quick runs never overwrite a full run's file."""
    device_type = device.type if isinstance(device, torch.device) else str(device)
    return Path("runs") / f"bench-{name}-{device_type}{'-quick' if quick else ''}.{suffix}"


def machine_info(device: torch.device) -> dict:
    """Machine, library versions and thread count recorded with every result file."""
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` as JSON atomically (temp file + rename), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def rows_to_dicts(rows: list[Row]) -> list[dict]:
    """Rows as plain dicts (ratio included) for the JSON record."""
    return [dict(asdict(r), ratio=r.ratio) for r in rows]


def _row_key(row: dict) -> tuple[str, str, str, str, str]:
    return (str(row["suite"]), str(row["case"]), str(row["phase"]), str(row["ours"]), str(row["baseline"]))


def load_rows(payload: dict) -> dict[tuple[str, str, str, str, str], dict]:
    """Rows of a results JSON (as :func:`write_json` wrote it) keyed by (suite, case, phase, ours, baseline).

    Raises
    ------
    ValueError
        If ``payload`` is not a results record (no ``suites`` list of ``rows``), or a row lacks a key field.
    """
    suites = payload.get("suites") if isinstance(payload, dict) else None
    if not isinstance(suites, list):
        raise ValueError("not a benchmark results file: expected an object with a 'suites' list")
    rows = {}
    for suite in suites:
        for row in suite.get("rows", []) if isinstance(suite, dict) else []:
            try:
                rows[_row_key(row)] = row
            except (KeyError, TypeError) as err:
                raise ValueError(f"a row of suite {suite.get('suite')!r} lacks {err}") from err
    return rows


def check_regressions(current: dict, baseline: dict, tolerance: float = 0.10) -> dict[str, list]:
    """Compare the ratios of ``current`` with the same rows of ``baseline`` (both results records).

    Every ratio reads "above 1, ours is better", so a row regresses when its ratio falls
    below ``(1 - tolerance)`` times the baseline's. Rows match on (suite, case, phase,
    ours, baseline); only suites present in ``current`` are compared, so a one-suite run
    checks against an ``all`` file. Rows with a non-finite ratio on either side are not
    compared.

    Parameters
    ----------
    current, baseline : dict
        Results records (``{"suites": [{"suite": ..., "rows": [...]}, ...]}``).
    tolerance : float
        Allowed relative fall of a ratio, in ``[0, 1)`` (default 10%).

    Returns
    -------
    dict
        ``regressions``: ``(key, baseline_ratio, current_ratio)`` for each regressed row;
        ``new``: keys only in ``current``; ``missing``: keys of the run suites only in
        ``baseline``; ``compared``: the number of rows compared.

    Raises
    ------
    ValueError
        A tolerance outside ``[0, 1)`` or a payload that is not a results record.
    """
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1):
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
    now, before = load_rows(current), load_rows(baseline)
    suites = {key[0] for key in now} | {str(s.get("suite")) for s in current["suites"] if isinstance(s, dict)}
    regressions, compared = [], 0
    for key, row in now.items():
        if key not in before:
            continue
        old, new = float(before[key].get("ratio", float("nan"))), float(row.get("ratio", float("nan")))
        if not (math.isfinite(old) and math.isfinite(new)):
            continue
        compared += 1
        if new < (1 - tolerance) * old:
            regressions.append((key, old, new))
    return {
        "regressions": regressions,
        "new": sorted(k for k in now if k not in before),
        "missing": sorted(k for k in before if k[0] in suites and k not in now),
        "compared": compared,
    }
