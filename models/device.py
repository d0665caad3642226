"""Choice of the torch device for training and inference."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """Map "auto", "cpu" or "cuda" to a torch device; "auto" picks CUDA when available.

    Raises ValueError when "cuda" is requested but torch.cuda.is_available() is False.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f'invalid device {name!r}; use "auto", "cpu" or "cuda"')
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError('device "cuda" requested but torch finds no CUDA device; use "auto"')
    return torch.device(name)
