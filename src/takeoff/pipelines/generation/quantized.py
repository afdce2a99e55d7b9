"""Lighter matrix products for decoding one token at a time on a CPU.

Decoding a small model on a CPU reads every weight once per token, so the bytes read decide the
speed far more than the arithmetic. Three replacements for ``nn.Linear``, built from a loaded
float32 model:

* :class:`Int4Linear` — for weights that already lie on a 4-bit grid: each group of 32 weights of
  a row equal to ``a * q + b`` with ``q`` in 0..15. A model converted from a Q4_0, Q4_1 or Q4_K
  GGUF file (the packaged SmolLM2) is exactly that; its weights are packed back into 4 bits
  (an eighth of float32's bytes) without changing any of them beyond the rounding of each
  group's ``a`` and ``b`` to the activations' type.
* :class:`Int8Linear` — weight-only int8 with one scale per output row: lossy (opt-in).
* :class:`ExactArgmaxHead` — the vocabulary projection, the largest single matrix of a small
  model (49,152 x 576 in SmolLM2, a fifth of its weights): its logits come from int8 weights,
  then every row whose logit could be the largest (a bound on the int8 error says which) is
  recomputed in float32 from the float weights. The largest logit, so the greedy token, is
  float32's; the others keep int8's accuracy.

The kernels (``torch.ops.aten._weight_int4pack_mm_for_cpu`` and ``_weight_int8pack_mm``, the
ones torchao uses on CPU) take their activations in bf16; inputs are rounded to bf16 on the way
in and the outputs turned back to float32, so norms, attention and the residual stream stay in
float32.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger("takeoff")

GROUP = 32  # weights per 4-bit group (GGUF's block size)
ACT = torch.bfloat16  # the kernels' activation type
# The int4 and int8 kernels cost about one weight pass per row of activations (they are built for
# one token at a time), while float32's matrix product reads the weights once for all rows: above
# this many rows (a prompt being read, a perplexity batch) the layers use their float32 weights.
# Batched decoding (up to 8 streams) stays below it.
KERNEL_MAX_ROWS = 8


def kernels_available() -> bool:
    """Whether this torch has the CPU weight-only int4 and int8 matrix products."""
    aten = torch.ops.aten
    return all(hasattr(aten, name) for name in ("_weight_int4pack_mm_for_cpu", "_convert_weight_to_int4pack_for_cpu",
                                                 "_weight_int8pack_mm"))


# ---------------------------------------------------------------------------- 4-bit
def grid_4bit(weight: torch.Tensor, group: int = GROUP, tolerance: float = 2.0 ** -16):
    """The 4-bit form of ``weight`` ([out, in]) when each group of ``group`` weights of a row is
    ``scale * q + low`` with ``q`` in 0..15 (up to float32 rounding), else None.

    Returns:
        (q [out, in] int32 in 0..15, scale [out, in/group], low [out, in/group]) or None.
    """
    out_f, in_f = weight.shape
    if in_f % group or out_f % 16:
        return None
    w = weight.detach().float().reshape(out_f, in_f // group, group)  # [out, groups, group]
    low = w.amin(-1, keepdim=True)
    scale = (w.amax(-1, keepdim=True) - low) / 15
    q = (w - low).mul_(1 / scale.clamp(min=1e-30)).round_().clamp_(0, 15)
    error = torch.addcmul(low, q, scale).sub_(w).abs_().amax()
    if not bool(error <= tolerance * w.abs().amax().clamp(min=1e-30)):
        return None
    return q.reshape(out_f, in_f).to(torch.int32), scale.squeeze(-1), low.squeeze(-1)


class Int4Linear(nn.Module):
    """A bias-free linear layer whose weights lie on a 4-bit grid (see :func:`grid_4bit`),
    packed for the CPU int4 kernel (up to :data:`KERNEL_MAX_ROWS` rows; its float32 weights
    above)."""

    def __init__(self, weight: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, low: torch.Tensor,
                 group: int = GROUP):
        super().__init__()
        self.weight = weight
        self.out_features, self.in_features = q.shape
        self.group = group
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), 1))
        # the kernel computes (q - 8) * scale + zero per group: zero = low + 8 * scale
        zeros = low + 8 * scale
        self.register_buffer("scales_zeros", torch.stack([scale, zeros], -1).transpose(0, 1).contiguous().to(ACT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] > KERNEL_MAX_ROWS or x.dtype != torch.float32:
            return nn.functional.linear(x, self.weight)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows.to(ACT), self.packed, self.group, self.scales_zeros)
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)


# ---------------------------------------------------------------------------- 8-bit
def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 weights with one float32 scale per row: (q [out, in] int8, scale [out])."""
    w = weight.detach().float()
    scale = w.abs().amax(1, keepdim=True).clamp(min=1e-12) / 127
    return w.mul(1 / scale).round_().clamp_(-127, 127).to(torch.int8), scale.squeeze(1)


class Int8Linear(nn.Module):
    """Weight-only int8 linear layer (one scale per output row) up to :data:`KERNEL_MAX_ROWS`
    rows, its float32 weights above; bias kept in float32."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.weight = weight
        self.out_features, self.in_features = weight.shape
        q, scale = int8_rows(weight)
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale.to(ACT))
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] > KERNEL_MAX_ROWS or x.dtype != torch.float32:
            return nn.functional.linear(x, self.weight, self.bias)
        y = torch.ops.aten._weight_int8pack_mm(rows.to(ACT), self.weight_int8, self.scale).to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


class ExactArgmaxHead(nn.Module):
    """The vocabulary projection: int8 logits, with every row that could hold the largest logit
    recomputed in float32 (so the argmax is float32's).

    Only while decoding (inside :func:`decoding`, on that thread) are the logits approximate;
    elsewhere (perplexity, training-style calls) the head is a plain float32 projection.

    The bound on a row's int8 error, for input ``x`` and its bf16 rounding ``x~``:
    ``|x|·|W_i - W~_i| + |x - x~|·|W~_i|`` (Cauchy-Schwarz, with the per-row norms kept from
    quantizing), plus the bf16 rounding of the output and float32 accumulation. Any row whose
    upper bound reaches the largest lower bound is recomputed exactly; the others cannot be the
    argmax. On SmolLM2 that is a handful of the 49,152 rows per token.
    """

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = weight  # float32 [vocab, hidden], shared with the input embeddings when tied
        self.out_features, self.in_features = weight.shape
        q, scale = int8_rows(weight)
        scale = scale.to(ACT)
        approx = q.float() * scale.float()[:, None]  # the weights the kernel multiplies with
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale)
        self.register_buffer("error_norm", (weight.detach().float() - approx).norm(dim=1))
        self.register_buffer("approx_norm", approx.norm(dim=1))
        self.accumulation = 2.0 * self.in_features * 2.0 ** -24
        self.recomputed = Recomputed()
        self.local = threading.local()  # .decoding: whether this thread is decoding (argmax/sampling only)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if not getattr(self.local, "decoding", False) or rows.shape[0] > KERNEL_MAX_ROWS or rows.dtype != torch.float32:
            return nn.functional.linear(x, self.weight)
        low = rows.to(ACT)
        logits = torch.ops.aten._weight_int8pack_mm(low, self.weight_int8, self.scale).float()  # [rows, vocab]
        x_norm = rows.norm(dim=1, keepdim=True)
        rounding = (rows - low.float()).norm(dim=1, keepdim=True)
        bound = (x_norm * self.error_norm + (rounding + self.accumulation * x_norm) * self.approx_norm
                 + logits.abs() * 2.0 ** -8 + 1e-6)
        floor = (logits - bound).amax(dim=1, keepdim=True)
        for i, candidates in enumerate(logits + bound >= floor):
            index = candidates.nonzero().view(-1)
            logits[i, index] = self.weight.index_select(0, index) @ rows[i]
            self.recomputed.add(len(index))
        return logits.reshape(*x.shape[:-1], self.out_features)


@dataclass
class Recomputed:
    """How many head rows were recomputed in float32 (to report and to test the bound)."""

    calls: int = 0
    rows: int = 0
    most: int = 0

    def add(self, n: int) -> None:
        self.calls += 1
        self.rows += n
        self.most = max(self.most, n)


# ---------------------------------------------------------------------------- whole models
def _linears(model: nn.Module, head: nn.Module | None):
    """(parent, attribute name, module) of each nn.Linear of ``model`` except ``head``."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and child is not head:
                yield parent, name, child


def pack_4bit_grids(model: nn.Module) -> tuple[int, int]:
    """Replace each bias-free linear layer whose weights lie on a 4-bit grid by an
    :class:`Int4Linear` (the head excepted); returns (replaced, linear layers looked at)."""
    head = model.get_output_embeddings()
    replaced = seen = 0
    for parent, name, linear in _linears(model, head):
        seen += 1
        found = grid_4bit(linear.weight) if linear.bias is None else None
        if found is not None:
            setattr(parent, name, Int4Linear(linear.weight, *found))
            replaced += 1
    return replaced, seen


def quantize_int8(model: nn.Module) -> int:
    """Replace every linear layer but the head by an :class:`Int8Linear`; returns how many."""
    head = model.get_output_embeddings()
    n = 0
    for parent, name, linear in _linears(model, head):
        setattr(parent, name, Int8Linear(linear.weight, linear.bias))
        n += 1
    return n


@contextlib.contextmanager
def decoding(model: nn.Module) -> Iterator[None]:
    """Within this block, on this thread, an :class:`ExactArgmaxHead` of ``model`` gives the
    decoding logits (exact argmax, the rest int8-accurate); elsewhere exact float32 logits."""
    head = model.get_output_embeddings()
    if not isinstance(head, ExactArgmaxHead):
        yield
        return
    before = getattr(head.local, "decoding", False)
    head.local.decoding = True
    try:
        yield
    finally:
        head.local.decoding = before


def exact_argmax_head(model: nn.Module) -> bool:
    """Replace the model's vocabulary projection by an :class:`ExactArgmaxHead` (a bias-free
    ``nn.Linear`` only); returns whether it did."""
    head = model.get_output_embeddings()
    if not isinstance(head, nn.Linear) or head.bias is not None:
        return False
    model.set_output_embeddings(ExactArgmaxHead(head.weight))
    return True
