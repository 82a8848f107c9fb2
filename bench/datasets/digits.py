"""scikit-learn's bundled 8×8 digits (D = 64), offline.

Pixels are integers 0…16. Each is dequantized once with uniform noise, v = pixel + u ∈ [0, 17),
then standardized per pixel with the training set's mean and standard deviation:
x = (v − m) / σ. The scaling's log-Jacobian −Σ log σ_i is added back, so NLLs are nats per
sample in the dequantized pixel space [0, 17)^64 and bits/dim are over 17 levels.
Split: a seeded permutation of the 1,797 images, 500 held out for test.
"""

from pathlib import Path

import torch

from bench.datasets.base import Data, DatasetInfo, constant_log_jacobian, register

DIGITS_SEED = 7
N_TEST = 500
DIM = 64


def load_digits(dim: int = DIM, data_dir: Path | None = None) -> Data:
    from sklearn.datasets import load_digits as sklearn_digits

    pixels = torch.from_numpy(sklearn_digits().data).double()
    generator = torch.Generator().manual_seed(DIGITS_SEED)
    order = torch.randperm(pixels.shape[0], generator=generator)
    v = pixels[order] + torch.rand(pixels.shape, generator=generator, dtype=torch.float64)
    train, test = v[N_TEST:], v[:N_TEST]
    mean, std = train.mean(0), train.std(0)
    return Data(
        name="digits",
        train=((train - mean) / std).float(),
        test=((test - mean) / std).float(),
        log_jacobian=constant_log_jacobian(-std.log().sum().item()),
    )


register(
    DatasetInfo(
        name="digits",
        summary="scikit-learn 8×8 digits, dequantized, standardized (Jacobian counted)",
        dim=DIM,
        splits=f"train 1,297 / test {N_TEST} images",
        seed=DIGITS_SEED,
        truth=False,
        load=load_digits,
    )
)
