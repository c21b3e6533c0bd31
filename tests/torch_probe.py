"""What PyTorch does with each layer of tests/test_robustness.py::TORCH_POOLS (not a test: needs torch).

    python -m venv /tmp/venv-torch && /tmp/venv-torch/bin/pip install torch==2.13.0 numpy
    /tmp/venv-torch/bin/python tests/torch_probe.py

prints one line per row: the output shape (channels first, batch dropped) or the first line of
PyTorch's error. The rows of TORCH_POOLS are this output for torch 2.13.0 (CPU wheel), copied as
literals; torch is never a dependency of convcost or of its tests.
"""

from __future__ import annotations

import torch
from torch import nn

ROWS = [
    ("max_pool1d k3 s3 p2 d2 on 1x9", lambda: nn.MaxPool1d(3, stride=3, padding=2, dilation=2), (1, 9)),
    ("max_pool2d k3 s3 p2 d2 on 1x9x9", lambda: nn.MaxPool2d(3, stride=3, padding=2, dilation=2), (1, 9, 9)),
    ("max_pool2d k3 s1 p1 d2 on 1x9x9", lambda: nn.MaxPool2d(3, stride=1, padding=1, dilation=2), (1, 9, 9)),
    ("max_pool2d k4 s1 p2 on 1x9x9", lambda: nn.MaxPool2d(4, stride=1, padding=2), (1, 9, 9)),
    ("max_pool2d k4 s1 p3 on 1x9x9", lambda: nn.MaxPool2d(4, stride=1, padding=3), (1, 9, 9)),
    ("avg_pool1d k4 s1 p2 on 1x9", lambda: nn.AvgPool1d(4, stride=1, padding=2), (1, 9)),
    ("avg_pool2d k3 s1 p2 on 1x9x9", lambda: nn.AvgPool2d(3, stride=1, padding=2), (1, 9, 9)),
    ("avg_pool3d k3 s1 p1 on 1x2x2x2", lambda: nn.AvgPool3d(3, stride=1, padding=1), (1, 2, 2, 2)),
    ("avg_pool3d k3 s1 p1 on 1x2x3x3", lambda: nn.AvgPool3d(3, stride=1, padding=1), (1, 2, 3, 3)),
    ("avg_pool3d k(1,3,3) s1 p(0,1,1) on 1x1x2x2", lambda: nn.AvgPool3d((1, 3, 3), stride=1, padding=(0, 1, 1)),
     (1, 1, 2, 2)),
    ("avg_pool2d k3 s1 p1 on 1x2x2", lambda: nn.AvgPool2d(3, stride=1, padding=1), (1, 2, 2)),
    ("avg_pool1d k3 s1 p1 on 1x2", lambda: nn.AvgPool1d(3, stride=1, padding=1), (1, 2)),
    ("max_pool3d k3 s1 p1 on 1x2x2x2", lambda: nn.MaxPool3d(3, stride=1, padding=1), (1, 2, 2, 2)),
    ("conv_transpose2d out1 k1 p1 on 1x2x2", lambda: nn.ConvTranspose2d(1, 1, 1, padding=1), (1, 2, 2)),
    ("conv_transpose1d out1 k2 p1 on 1x1", lambda: nn.ConvTranspose1d(1, 1, 2, padding=1), (1, 1)),
    # the one path that allows a zero-size output (docs/conventions.md): groups > 1 through oneDNN
    ("conv_transpose2d 2->2 k1 p1 groups2 on 2x2x2", lambda: nn.ConvTranspose2d(2, 2, 1, padding=1, groups=2),
     (2, 2, 2)),
]


def main() -> None:
    print(f"torch {torch.__version__}")
    for name, make, shape in ROWS:
        try:
            print(f"{name}: {tuple(make()(torch.zeros(1, *shape)).shape[1:])}")
        except RuntimeError as error:
            print(f"{name}: {str(error).splitlines()[0]}")


if __name__ == "__main__":
    main()
