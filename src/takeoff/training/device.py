"""Which device to train on, seeding, and mixed precision.

Everything device-specific the loop needs lives here, so the loop itself reads the same on a
CPU and on a GPU.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from takeoff.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name from the config into a ``torch.device``.

    Args:
        name: "auto" (the first GPU when CUDA is available, else the CPU), "cpu", "cuda" or
            "cuda:N". Defaults to "auto". In a process group of several ranks, "auto" and
            "cuda" mean this rank's GPU, ``cuda:LOCAL_RANK``.

    Returns:
        The device.

    Raises:
        ConfigError: an unknown name, or a GPU asked for where there is none.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    text = str(name).strip().lower()
    if text in ("auto", "cuda") and torch.cuda.is_available() and _distributed():
        # one GPU per process: the launcher's local rank picks it (torchrun, takeoff --devices)
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0") or 0))
    if text == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index = 0
        if text != "cuda":
            suffix = text.split(":", 1)[1]
            if not suffix.isdigit():
                raise ConfigError(
                    f"device '{name}' is not valid; use one of: {', '.join(DEVICE_CHOICES)} "
                    "(N a GPU index, e.g. cuda:0)",
                    path="device",
                )
            index = int(suffix)
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device '{name}' was asked for, but CUDA is not available here (torch "
                f"{torch.__version__}). Fix: use device 'auto' or 'cpu', or install a CUDA "
                "build of torch on a machine with an NVIDIA GPU.",
                path="device",
            )
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(
                f"device '{name}' does not exist: this machine has {count} GPU(s) "
                f"(cuda:0 to cuda:{count - 1}). Fix: use a smaller index or 'auto'.",
                path="device",
            )
        return torch.device("cuda", index)
    raise ConfigError(
        f"unknown device '{name}'; valid: {', '.join(DEVICE_CHOICES)}", path="device"
    )


def _distributed() -> bool:
    """Whether this process is one of several in a process group."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's, NumPy's and torch's (CPU and every GPU) random generators.

    Args:
        seed: the seed.
        deterministic: also ask torch for deterministic algorithms (warning, not failing, where
            an op has none) and turn off cuDNN autotuning. Defaults to True. This is a
            process-wide torch setting; pass False to leave it as it is.

    Example:
        >>> seed_everything(0)
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        # cuBLAS reads this when its first handle is created; setting it later is harmless.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def autocast_context(device: torch.device, precision: str = "auto", cpu: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed); a no-op context elsewhere.

    GPUs without bf16 (before Ampere) train in float32: float16 would need loss scaling.

    Args:
        device: where the computation runs.
        precision: "auto" (as above), "fp32" (never autocast) or "bf16" (always, even where
            bf16 is emulated).
        cpu: with "auto", also autocast on a CPU that computes bf16 natively (see
            :func:`native_bf16`). Off by default: small networks gain nothing from it, and
            predictions stay float32 so that they match across machines.

    Example:
        >>> with autocast_context(torch.device("cpu")):
        ...     pass
    """
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    if (device.type == "cuda" or (cpu and device.type == "cpu")) and native_bf16(device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products in hardware (not emulated): a GPU from
    Ampere on, or a CPU with AVX-512 BF16 or AMX instructions.

    Inference in bf16 there runs about 1.5-2x faster than float32 (MiniLM on two such CPU
    cores: 1.8x); elsewhere bf16 is emulated and slower, so callers stay in float32.

    Example:
        >>> isinstance(native_bf16(torch.device("cpu")), bool)
        True
    """
    if device.type == "cuda":
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # torch without the argument did not count emulation
            return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, but stable since torch 2.3
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
