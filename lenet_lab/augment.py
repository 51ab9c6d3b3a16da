"""Data augmentation of whole training batches on their device (``conf/augmentation/``).

Each transform maps an N×C×H×W batch to a new one, drawing per image: no DataLoader, no
per-image Python. The training step applies it to every training batch (never to the
validation split); the CUDA graph captures it with the rest of the step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class HFlip:
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        if not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p
        return torch.where(flip, x.flip(3), x)


class Shift:
    """Translate each image by a random whole number of pixels in ``[-max_pixels,
    max_pixels]`` along each axis, filling with the batch's background (its minimum value:
    black, normalized or not)."""

    def __init__(self, max_pixels: int = 2):
        if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels < 0:
            raise ValueError(f"max_pixels must be an integer >= 0, got {max_pixels!r}")
        self.max_pixels = max_pixels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.max_pixels
        if m == 0:
            return x
        n, c, h, w = x.shape
        low = x.amin()  # a tensor, not a float: no host sync (CUDA graphs capture this)
        padded = F.pad(x - low, (m, m, m, m)) + low
        dy = torch.randint(0, 2 * m + 1, (n, 1), device=x.device)
        dx = torch.randint(0, 2 * m + 1, (n, 1), device=x.device)
        rows = (torch.arange(h, device=x.device) + dy).view(n, 1, h, 1).expand(n, c, h, w + 2 * m)
        x = padded.gather(2, rows)
        cols = (torch.arange(w, device=x.device) + dx).view(n, 1, 1, w).expand(n, c, h, w)
        return x.gather(3, cols).contiguous()


class Compose:
    """Apply ``transforms`` in order (``hflip_shift``: flip, then shift)."""

    def __init__(self, transforms: list):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x
