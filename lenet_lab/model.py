"""LeNet-5 exactly as the lab sheet describes it (exercise 2), plus the lab's options."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

NormFactory = Callable[[int], nn.Module]  # num_features -> a normalization layer


class LeNet5(nn.Module):
    """C1 6@5x5 → ReLU → pool → C2 16@5x5 → ReLU → pool → F3 120 → F4 84 → F5 10.

    The output is raw logits: no softmax, because ``nn.CrossEntropyLoss`` applies
    log-softmax itself (adding a softmax would squash the gradients and double-normalize);
    use ``logits.softmax(1)`` only to read probabilities. 44,426 trainable parameters.

    ``dropout`` > 0 puts ``nn.Dropout(p)`` between C1 and C2 and between F3 and F4
    (exercise 5); ``norm`` (a factory such as ``nn.BatchNorm2d``, called with 6 channels) puts
    a normalization layer between the convolutions (exercise 7; ``batchnorm=True`` is
    ``norm=nn.BatchNorm2d``). ``stem`` returns the features entering and leaving that point.
    ``padding=2`` is LeCun's original 32x32 input (the 28x28 image zero-padded): C1 keeps
    28x28, C2 ends at 16@5x5 and F3 has 400 inputs, 61,706 parameters in all.
    """

    def __init__(
        self,
        num_classes: int = 10,
        dropout: float = 0.0,
        batchnorm: bool = False,
        norm: NormFactory | None = None,
        padding: int = 0,
    ):
        super().__init__()
        if norm is None and batchnorm:
            norm = nn.BatchNorm2d
        side = ((28 + 2 * padding - 4) // 2 - 4) // 2  # 4 (sheet) or 5 (padded)
        self.c1 = nn.Conv2d(1, 6, kernel_size=5, stride=1, padding=padding)  # -> 6@24x24
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)  # halves H and W
        self.norm = norm(6) if norm is not None else nn.Identity()  # between C1 and C2
        self.drop_conv = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.c2 = nn.Conv2d(6, 16, kernel_size=5, stride=1, padding=0)  # 6@12x12 -> 16@8x8
        self.f3 = nn.Linear(16 * side * side, 120)  # flatten 16@4x4 = 256
        self.drop_fc = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.f4 = nn.Linear(120, 84)
        self.f5 = nn.Linear(84, num_classes)

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features entering and leaving the normalization point (after C1+ReLU+pool)."""
        before = self.pool(torch.relu(self.c1(x)))
        return before, self.norm(before)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop_conv(self.stem(x)[1])
        x = self.pool(torch.relu(self.c2(x)))
        x = torch.flatten(x, 1)
        x = self.drop_fc(torch.relu(self.f3(x)))
        x = torch.relu(self.f4(x))
        return self.f5(x)  # logits


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters: sum of ``numel`` over ``model.parameters()`` (exercise 2.2)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
