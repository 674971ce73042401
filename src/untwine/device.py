"""Which torch device a run uses: ``auto`` is CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from untwine.errors import UntwineError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; a CUDA device that is not there is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise UntwineError(
                f"device {name!r} asked for but this machine has {count} CUDA device(s); "
                "use --set device=auto or device=cpu"
            )
    return device
