"""Suite ``compile``: ``torch.compile`` of the README's FNO training step against neuraloperator's.

Model: the README's ``FNO(1, 1, (12, 12), hidden_channels=32, n_layers=4)`` and the
same network in neuraloperator 2.0.0 (``n_modes=(23, 23)``: the same kept bins), batch
4, a training step = ``zero_grad``, forward, MSE loss, backward, an Adam step, with the
model compiled (ours ``fullgraph=True``; neuraloperator's graph breaks, so without it).

Every compile runs in a fresh Python process with an empty inductor cache (FX graph and
autograd caches off) and one compile thread, so "cold" means cold. Rows per setting
(``dynamic=False``; unless ``--quick`` also ``dynamic=True`` and torch's default ``dynamic=None``;
a compile that fails, as neuraloperator's does with ``dynamic=True``, gives NaN rows and its
error in the JSON record):

* ``cold-compile-cpu``: CPU seconds of the first step at 64x64, the process's own plus
  its children's (inductor's C++ compiler runs in child processes); wall seconds in
  ``cold-compile-wall`` (on a shared machine, wall time measures the scheduler too).
* ``new-grid-96``: CPU seconds of the first step on a 96x96 grid (a recompile costs
  seconds, reusing the graph milliseconds), and ``third-grid-80`` after it.
* ``compiled-step-1-thread-cpu``: a warm compiled step at 64x64 in ms, one thread.
* ``compiled-step-peak-memory-tensors`` (CPU): the peak of live tensor memory during a warm
  compiled step at 64x64 in MB (:func:`benchmarks._harness.tensor_peak_bytes`).
* ``compiled-step-1-thread-cpu-conv-free-bound`` (``dynamic=False``): the same for our model with
  free stand-ins for its spectral convolutions (``benchmarks.bench_fno.conv_free``: they hold the
  convolutions' weights, so Adam's update of them stays in the step), against neuraloperator's
  whole compiled step: the compiled speed-up no spectral convolution could take the step beyond.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._harness import BenchContext, Row

__all__ = ["SETTINGS", "run", "probe"]

# torch.compile's ``dynamic=`` per setting: False (a graph per grid), True (symbolic sizes from the
# start), None (torch's default: static first, symbolic from the first recompile on)
SETTINGS = {"static": False, "dynamic": True, "default": None}
_ROOT = Path(__file__).resolve().parents[1]


def probe(which: str, setting: str, device: str = "cpu") -> dict[str, float]:
    """One cold compile of the training step in this process (call it in a fresh one): seconds per step."""
    import resource
    import time

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if which in ("ours", "ours-conv-free"):
        from operators import FNO

        model = FNO(1, 1, (12, 12), hidden_channels=32, n_layers=4)
        if which == "ours-conv-free":
            from benchmarks.bench_fno import conv_free

            model = conv_free(model)
    else:
        from neuralop.models import FNO as TheirFNO

        model = TheirFNO((23, 23), 1, 1, 32, n_layers=4)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    compiled = torch.compile(model, fullgraph=which != "neuralop", dynamic=SETTINGS[setting])

    def step(n: int) -> None:
        x, y = torch.randn(4, 1, n, n, device=device), torch.randn(4, 1, n, n, device=device)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(compiled(x), y).backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    def cpu_seconds() -> float:
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + kids.ru_utime + kids.ru_stime

    out = {}
    for tag, n in (("cold", 64), ("warm", 64), ("new-grid-96", 96), ("third-grid-80", 80)):
        wall, cpu = time.perf_counter(), cpu_seconds()
        step(n)
        out[tag + "-cpu"], out[tag + "-wall"] = cpu_seconds() - cpu, time.perf_counter() - wall
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        step(64)
        best = min(best, time.process_time() - start)
    out["step-ms"] = best * 1e3
    if device == "cpu":  # after the timings: the profiler's allocations change glibc's thresholds for the process
        from benchmarks._harness import tensor_peak_bytes

        out["peak-tensors-mb"] = tensor_peak_bytes(lambda: step(64)) / 2**20
    return out


def _fresh_process(which: str, setting: str, device: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="inductor-cold-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "TORCHINDUCTOR_FX_GRAPH_CACHE": "0",
               "TORCHINDUCTOR_AUTOGRAD_CACHE": "0", "TORCHINDUCTOR_COMPILE_THREADS": "1", "OMP_NUM_THREADS": "1"}
        code = ("import json, sys; from benchmarks.bench_compile import probe; "
                f"print('RESULT ' + json.dumps(probe({which!r}, {setting!r}, {device!r})))")
        done = subprocess.run([sys.executable, "-c", code], cwd=_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        errors = [ln for ln in done.stderr.splitlines() if "Error" in ln or "error" in ln]
        return {"error": errors[-1] if errors else done.stderr[-500:]}
    return json.loads(lines[-1][len("RESULT "):])


def run(ctx: BenchContext) -> list[Row]:
    try:
        import neuralop  # noqa: F401
    except ImportError as err:
        raise RuntimeError("suite 'compile' needs neuraloperator 2.0.0 (pip install neuraloperator==2.0.0)") from err
    rows = []
    for setting in ["static"] if ctx.quick else list(SETTINGS):
        ours = _fresh_process("ours", setting, ctx.device.type)
        theirs = _fresh_process("neuralop", setting, ctx.device.type)
        for name, got in (("ours", ours), ("neuralop-2.0.0", theirs)):
            if "error" in got:
                print(f"compile {setting}: {name} failed: {got['error']}")
        case = f"readme-fno-step-B4-64x64-{setting}"
        params = {"model": "FNO(1, 1, (12, 12), hidden_channels=32, n_layers=4)", "neuralop_n_modes": (23, 23),
                  "dynamic": SETTINGS[setting], "compile_threads": 1}
        for phase, key, unit in (("cold-compile-cpu", "cold-cpu", "s"), ("cold-compile-wall", "cold-wall", "s"),
                                 ("new-grid-96", "new-grid-96-cpu", "s"), ("third-grid-80", "third-grid-80-cpu", "s"),
                                 ("compiled-step-1-thread-cpu", "step-ms", "ms"),
                                 ("compiled-step-peak-memory-tensors", "peak-tensors-mb", "MB")):
            rows.append(Row("compile", case, phase, "ours", "neuralop-2.0.0", ours.get(key, float("nan")),
                            theirs.get(key, float("nan")), unit, params))
        ctx.extra[setting] = {"ours": ours, "neuralop-2.0.0": theirs}
        if setting == "static":  # the bound: our compiled step with free stand-ins for the spectral convs
            free = _fresh_process("ours-conv-free", setting, ctx.device.type)
            rows.append(Row("compile", case, "compiled-step-1-thread-cpu-conv-free-bound", "ours-without-spectral-conv",
                            "neuralop-2.0.0", free.get("step-ms", float("nan")), theirs.get("step-ms", float("nan")), "ms",
                            params))
            ctx.extra[setting]["ours-conv-free"] = free
    return rows
