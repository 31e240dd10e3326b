"""Suite ``fno``: SpectralConv and an FNO training step against neuraloperator 2.0.0 and plain torch.

Mode sets compared (neuraloperator counts n_modes differently from us):

- neuraloperator ``n_modes=(16, 16)`` keeps fft rows ``-8..7`` and rfft columns
  ``0..8``: 16 x 9 = 144 modes;
- ours ``n_modes=(9, 9)`` keeps ``|k| < 9``: rows ``-8..8``, columns ``0..8``,
  17 x 9 = 153 modes (a superset, so ours does at least the same work);
- the plain torch reference keeps our set: ``rfft2``, two corner einsums, zero-filled
  spectrum, ``irfft2`` (the textbook FNO layer).

Rows: SpectralConv fwd and fwd+bwd (ms) against both baselines; one FNO training step
(hidden 32, 4 layers, same batch, Adam) in ms (on CPU also its single-thread process CPU
time, which a machine shared with other jobs distorts far less than wall time) and its peak memory (MB):
CUDA allocator growth on GPU; on CPU both the resident-set growth and the peak of live
tensor memory from the torch profiler's memory timeline. Outputs of ours and the plain reference
are checked to agree before timing. On CPU a bound row times, in the same rounds, our step with every
spectral convolution replaced by a free stand-in (``0 * x``, holding the convolution's weights, which
get a zero gradient and the optimizer's update) against neuraloperator's whole step: the speed-up no
spectral convolution, however fast, could take the step beyond.

Each conv case also times the limit (baseline "irreducible", same process and shapes,
fwd and fwd+bwd): :class:`benchmarks._limit.IrreducibleConv` with our layer's weights
(rfft of every row, a full-length FFT of only the kept columns, the batched matmul, the
zero-filled inverses, torch's own backward); its ratio is irreducible / ours (1 = at the
limit, issue 20's target is at least 1 / 1.2 = 0.83x), also in one thread's process CPU
time on CPU. Every conv row carries the
correctness column: the max absolute error of our float32 output against the same
convolution in float64 with plain ``torch.fft`` (:func:`conv_error`).
"""

from __future__ import annotations

import copy

import torch

__all__ = ["CASES", "LARGE_KERNEL_CASES", "QUICK_CASES", "PlainSpectralConv2d", "conv_error", "conv_free", "run"]

from benchmarks._harness import BenchContext, Row, compare, one_thread_cpu_ms, peak_memory_bytes, tensor_peak_bytes
from benchmarks._limit import IrreducibleConv, irreducible_conv, max_error_vs_float64
from operators.fno import FNO
from operators.spectral_conv import SpectralConv

# (B, C, grid side); neuraloperator modes (16, 16) vs ours (9, 9)
CASES = [(8, 32, 64), (8, 32, 128), (4, 64, 256)]
QUICK_CASES = [(8, 32, 64)]
# (B, C, grid side, m): the limit rows at the larger kernel of issue 20's targets (m = 9 is in CASES)
LARGE_KERNEL_CASES = [(8, 32, 64, 16), (8, 32, 128, 16)]
THEIR_MODES, OUR_MODES = (16, 16), (9, 9)


def _neuralop():
    try:
        from neuralop.layers.spectral_convolution import SpectralConv as TheirConv
        from neuralop.models import FNO as TheirFNO
    except ImportError as err:  # the bench extra is not installed
        raise RuntimeError("suite 'fno' needs neuraloperator 2.0.0 (pip install neuraloperator==2.0.0)") from err
    return TheirConv, TheirFNO


class PlainSpectralConv2d(torch.nn.Module):
    """Textbook FNO layer: rfft2, einsum on the two kept corners, irfft2 (our mode set)."""

    def __init__(self, conv: SpectralConv) -> None:
        super().__init__()
        m0, m1 = conv.n_modes
        w = torch.view_as_complex(conv.weight.detach().reshape(2 * m0 - 1, m1, conv.in_channels, conv.out_channels, 2).contiguous())
        self.m0, self.m1 = m0, m1
        self.w_pos = torch.nn.Parameter(w[:m0].permute(2, 3, 0, 1).contiguous())  # (Cin, Cout, m0, m1)
        self.w_neg = torch.nn.Parameter(w[m0:].permute(2, 3, 0, 1).contiguous())  # (Cin, Cout, m0 - 1, m1)
        self.bias = torch.nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        xf = torch.fft.rfft2(x, norm="forward")
        out = torch.zeros(b, self.w_pos.shape[1], h, w // 2 + 1, dtype=xf.dtype, device=x.device)
        m0, m1 = self.m0, self.m1
        out[:, :, :m0, :m1] = torch.einsum("bixy,ioxy->boxy", xf[:, :, :m0, :m1], self.w_pos)
        out[:, :, h - m0 + 1:, :m1] = torch.einsum("bixy,ioxy->boxy", xf[:, :, h - m0 + 1:, :m1], self.w_neg)
        return torch.fft.irfft2(out, s=(h, w), norm="forward") + self.bias.reshape(1, -1, 1, 1)


def conv_error(conv: SpectralConv, x: torch.Tensor) -> float:
    """Max absolute error of ``conv(x)`` against the same dense real-data convolution in float64.

    The reference is :func:`benchmarks._limit.irreducible_conv` (plain ``torch.fft``) on
    float64 copies of ``x``, the weights and the bias.
    """
    with torch.no_grad():
        ours = conv(x)
    bias = torch.zeros(conv.out_channels) if conv.bias is None else conv.bias

    def reference(x64, w64, b64):
        out = irreducible_conv(x64, torch.view_as_complex(w64.contiguous()), conv.n_modes)
        return out + b64.reshape(1, -1, *([1] * (x64.ndim - 2)))

    return max_error_vs_float64(ours, reference, x, conv.weight, bias.to(x.device))


def _fwd(module, x):
    def step():
        with torch.no_grad():
            module(x)
    return step


def _fwd_bwd(module, x):
    def step():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).square().mean().backward()
    return step


def _conv_rows(ctx: BenchContext, b: int, c: int, n: int) -> list[Row]:
    their_conv_cls, _ = _neuralop()
    ours = SpectralConv(c, c, OUR_MODES, device=ctx.device)
    theirs = their_conv_cls(c, c, THEIR_MODES).to(ctx.device)
    plain = PlainSpectralConv2d(ours).to(ctx.device)
    x = torch.randn(b, c, n, n, device=ctx.device, requires_grad=True)
    with torch.no_grad():
        err = (ours(x) - plain(x)).abs().max().item()
    if err > 1e-4 * plain(x).abs().max().item():
        raise RuntimeError(f"SpectralConv and the plain reference disagree by {err:.3e}")
    case = f"conv-B{b}-C{c}-{n}x{n}"
    params = {"B": b, "C": c, "grid": (n, n), "ours_n_modes": OUR_MODES, "ours_kept": 17 * 9,
              "neuralop_n_modes": THEIR_MODES, "neuralop_kept": 16 * 9, "dtype": "float32"}
    rows = []
    for phase, make in (("fwd", _fwd), ("fwd+bwd", _fwd_bwd)):
        rows.append(compare("fno", case, phase, ("ours", make(ours, x)), ("neuralop-2.0.0", make(theirs, x)), ctx, params))
        rows.append(compare("fno", case, phase, ("ours", make(ours, x)), ("plain-torch", make(plain, x)), ctx, params))
    error = conv_error(ours, x)
    for row in rows:
        row.max_error = error
    if ctx.device.type == "cpu":
        cpu = one_thread_cpu_ms({"ours": _fwd_bwd(ours, x), "theirs": _fwd_bwd(theirs, x)}, 2 if ctx.quick else 4)
        rows.append(Row("fno", case, "fwd+bwd-1-thread-cpu", "ours", "neuralop-2.0.0", cpu["ours"], cpu["theirs"], "ms", params))
    return rows + _limit_rows(ctx, ours, x, case, params, error)


def _limit_rows(ctx: BenchContext, ours: SpectralConv, x: torch.Tensor, case: str, params: dict, error: float) -> list[Row]:
    """``ours`` against the irreducible pruned conv with its weights, fwd and fwd+bwd (and 1-thread CPU time)."""
    limit = IrreducibleConv(ours).to(ctx.device)
    rows = [compare("fno", case, phase, ("ours", make(ours, x)), ("irreducible", make(limit, x)), ctx, params)
            for phase, make in (("fwd", _fwd), ("fwd+bwd", _fwd_bwd))]
    for row in rows:
        row.max_error = error
    if ctx.device.type == "cpu":  # the limit in one thread's process CPU time too (robust to a shared machine)
        lim = one_thread_cpu_ms({"ours-fwd": _fwd(ours, x), "limit-fwd": _fwd(limit, x),
                                 "ours-fwd+bwd": _fwd_bwd(ours, x), "limit-fwd+bwd": _fwd_bwd(limit, x)},
                                rounds=3 if ctx.quick else 6)
        for phase in ("fwd", "fwd+bwd"):
            rows.append(Row("fno", case, f"{phase}-1-thread-cpu", "ours", "irreducible", lim[f"ours-{phase}"],
                            lim[f"limit-{phase}"], "ms", params, max_error=error))
    return rows


def _large_kernel_rows(ctx: BenchContext, b: int, c: int, n: int, m: int) -> list[Row]:
    """Only the limit rows, at ``n_modes=(m, m)`` (issue 20's m = 16 cases)."""
    ours = SpectralConv(c, c, (m, m), device=ctx.device)
    x = torch.randn(b, c, n, n, device=ctx.device, requires_grad=True)
    kept = (2 * m - 1) * m
    params = {"B": b, "C": c, "grid": (n, n), "ours_n_modes": (m, m), "ours_kept": kept, "dtype": "float32"}
    return _limit_rows(ctx, ours, x, f"conv-B{b}-C{c}-{n}x{n}-m{m}", params, conv_error(ours, x))


def _train_step(model, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return step


class _FreeConv(torch.nn.Module):
    """A stand-in for a block's SpectralConv that does no convolution: ``0 * x`` (same shape, a gradient path).

    An FNO with these in place of its spectral convolutions bounds what any spectral
    convolution could give the training step: the rest of the step (lifting, channel maps,
    activations, projection, loss, optimizer) is all that is left to time. The stand-in
    holds the convolution's parameters and gives them a (zero) gradient, so the optimizer
    still updates them: every spectral convolution with these weights pays that update.
    """

    def __init__(self, conv: torch.nn.Module) -> None:
        super().__init__()
        self.held = torch.nn.ParameterList(conv.parameters())

    def forward(self, x: torch.Tensor, output_shape=None) -> torch.Tensor:
        tie = sum(p.sum() for p in self.held) * 0.0  # a zero that routes a gradient to every held weight
        return x.mul(0.0).add_(tie)


def conv_free(model: FNO) -> FNO:
    """A copy of ``model`` whose blocks' spectral convolutions are free stand-ins (the bound rows; ``model`` is untouched).

    The copy has the same parameters (the stand-ins hold the convolutions' weights): the
    optimizer's work is the same as for ``model``.
    """
    free = copy.deepcopy(model)
    for block in free.blocks:
        block.conv = _FreeConv(block.conv)
    return free


def _fno_rows(ctx: BenchContext, b: int, n: int) -> list[Row]:
    _, their_fno_cls = _neuralop()
    ours = FNO(1, 1, OUR_MODES, hidden_channels=32, n_layers=4, device=ctx.device)
    theirs = their_fno_cls(THEIR_MODES, 1, 1, 32, n_layers=4).to(ctx.device)
    x = torch.randn(b, 1, n, n, device=ctx.device)
    y = torch.randn(b, 1, n, n, device=ctx.device)
    n_ours = sum(p.numel() * (2 if p.is_complex() else 1) for p in ours.parameters())
    n_theirs = sum(p.numel() * (2 if p.is_complex() else 1) for p in theirs.parameters())
    case = f"fno-train-step-B{b}-{n}x{n}"
    params = {"B": b, "grid": (n, n), "hidden": 32, "layers": 4, "ours_n_modes": OUR_MODES, "neuralop_n_modes": THEIR_MODES,
              "ours_real_params": n_ours, "neuralop_real_params": n_theirs, "optimizer": "Adam"}
    step_ours, step_theirs = _train_step(ours, x, y), _train_step(theirs, x, y)
    rows = [compare("fno", case, "train-step", ("ours", step_ours), ("neuralop-2.0.0", step_theirs), ctx, params)]
    if ctx.device.type == "cpu":
        # single-thread process CPU time, robust to a shared machine; before the memory probes, which fix
        # glibc's mmap threshold for the rest of the process (every large buffer is then a fresh mapping,
        # whose page faults more than doubled both steps' CPU time)
        step_free = _train_step(conv_free(ours), x, y)
        cpu = one_thread_cpu_ms({"ours": step_ours, "theirs": step_theirs, "free": step_free}, 2 if ctx.quick else 5)
        rows.append(Row("fno", case, "train-step-1-thread-cpu", "ours", "neuralop-2.0.0", cpu["ours"], cpu["theirs"], "ms", params))
        # the bound: our step with every spectral conv replaced by a free stand-in, against neuraloperator's whole step
        rows.append(Row("fno", case, "train-step-1-thread-cpu-conv-free-bound", "ours-without-spectral-conv",
                        "neuralop-2.0.0", cpu["free"], cpu["theirs"], "ms", params))
    mem = [float("inf"), float("inf")]
    for rnd in range(4):  # alternating, so both see the same heap history; round 0 is a warm-up
        for i, step in enumerate((step_ours, step_theirs)):
            peak = peak_memory_bytes(step, ctx.device)
            mem[i] = min(mem[i], peak) if rnd else mem[i]
    phase = "peak-memory" if ctx.device.type == "cuda" else "peak-memory-rss"
    rows.append(Row("fno", case, phase, "ours", "neuralop-2.0.0", mem[0] / 2**20, mem[1] / 2**20, "MB", params))
    if ctx.device.type == "cpu":
        alloc = [tensor_peak_bytes(step) for step in (step_ours, step_theirs)]
        rows.append(Row("fno", case, "peak-memory-tensors", "ours", "neuralop-2.0.0", alloc[0] / 2**20, alloc[1] / 2**20, "MB", params))
    return rows


def run(ctx: BenchContext) -> list[Row]:
    ctx.extra["mode_sets"] = {
        "ours": f"n_modes={OUR_MODES}: |k| < 9 -> fft rows -8..8, rfft cols 0..8 (153 modes)",
        "neuralop-2.0.0": f"n_modes={THEIR_MODES}: fft rows -8..7, rfft cols 0..8 (144 modes)",
        "plain-torch": "our set, rfft2 + two corner einsums + irfft2",
    }
    rows = []
    for b, c, n in QUICK_CASES if ctx.quick else CASES:
        rows += _conv_rows(ctx, b, c, n)
    for b, c, n, m in LARGE_KERNEL_CASES[:1] if ctx.quick else LARGE_KERNEL_CASES:
        rows += _large_kernel_rows(ctx, b, c, n, m)
    rows += _fno_rows(ctx, 8, 64)
    return rows
