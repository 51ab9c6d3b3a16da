"""Data augmentation of whole training batches on their device (``conf/augmentation/``).

Each transform maps an N×C×H×W batch to a new one, drawing per image: no DataLoader, no
per-image Python. The training step applies it to every training batch (never to the
validation split); the CUDA graph captures it with the rest of the step.
"""

from __future__ import annotations

import math

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


class RandomErasing:
    """Blank one rectangle of each image with probability ``p`` (Zhong et al., 2017): its
    area a uniform fraction of the image in ``scale``, its aspect ratio log-uniform in
    ``ratio``, its place uniform, filled with ``value`` (0: the mean of normalized data).

    Per image, unlike torchvision's ``RandomErasing``, which draws one rectangle for the
    whole batch tensor it is given.
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        value: float = 0.0,
    ):
        if not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must be [low, high] with 0 < low <= high <= 1, got {scale!r}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must be [low, high] with 0 < low <= high, got {ratio!r}")
        self.p, self.value = float(p), float(value)
        self.scale, self.ratio = tuple(map(float, scale)), tuple(map(float, ratio))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        u = torch.rand(4, n, device=x.device)
        area = (self.scale[0] + (self.scale[1] - self.scale[0]) * u[0]) * h * w
        low, high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(low + (high - low) * u[1])
        eh = torch.sqrt(area * aspect).round().clamp(1, h)
        ew = torch.sqrt(area / aspect).round().clamp(1, w)
        top = ((h - eh + 1) * u[2]).floor()
        left = ((w - ew + 1) * u[3]).floor()
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        box = (
            (rows >= top.view(n, 1, 1))
            & (rows < (top + eh).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1))
            & (cols < (left + ew).view(n, 1, 1))
        )
        erase = box & (torch.rand(n, 1, 1, device=x.device) < self.p)
        return x.masked_fill(erase.unsqueeze(1), self.value)


class Compose:
    """Apply ``transforms`` in order (``hflip_shift``: flip, then shift)."""

    def __init__(self, transforms: list):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x
