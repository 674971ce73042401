"""Which torch device a run uses: ``auto`` is CUDA when present, else the CPU."""

from __future__ import annotations

from pathlib import Path

import torch

from untwine.errors import UntwineError


def device_available(device: torch.device) -> bool:
    """Whether this machine has ``device`` (CPU always; CUDA index; Apple MPS)."""
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return (device.index or 0) < count
    if device.type == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return True


def resolve_device(name: str, resume: Path | None = None) -> torch.device:
    """``auto`` is CUDA when available, else CPU; a device that is not there is an error whose
    fix fits the command (a fresh run takes ``--set device=...``; a resumed one too)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if not device_available(device):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        have = f"{count} CUDA device(s)" if device.type == "cuda" else "no MPS (Apple GPU)"
        fix = (
            f"continue it here with `untwine train --resume {resume} --set device=auto`"
            if resume is not None else "use --set device=auto or --set device=cpu"
        )
        raise UntwineError(f"device {name!r} asked for but this machine has {have}; {fix}")
    return device
