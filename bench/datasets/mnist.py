"""MNIST (D = 784): the canonical IDX files, downloaded into the cache with their MD5.

Preprocessing (as in MAF): each pixel is dequantized once, v = pixel + u ∈ [0, 256), then mapped
to logit space, x = logit(λ + (1 − 2λ) v / 256) with λ = 1e-6. The log-Jacobian of that map,
Σ_i [log(1 − 2λ) − log 256 − log σ(x_i) − log σ(−x_i)], is added back, so NLLs are nats per
sample in pixel space [0, 256)^784 and bits/dim are the usual ones.
Split: the first 50,000 training images train, the last 10,000 validate, the 10,000 t10k images
test. Labels are not used.
"""

import gzip
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bench.datasets.base import Data, DatasetError, DatasetInfo, register
from bench.datasets.download import RemoteFile, ensure

MNIST_SEED = 11
DIM = 784
N_VALID = 10_000
LOGIT_LAMBDA = 1e-6
MIRRORS = ("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/")


def _remote(name: str, md5: str) -> RemoteFile:
    return RemoteFile(f"mnist/{name}", tuple(m + name for m in MIRRORS), md5=md5)


FILES = {
    "train": _remote("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "test": _remote("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, source: Path) -> np.ndarray:
    """An IDX array: 2 zero bytes, a type code, the number of dims, big-endian int32 sizes."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{source} is not an IDX file: delete it and fetch it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(raw[4:header], dtype=">i4"))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + dtype.itemsize * math.prod(shape)
    if len(shape) != ndim or len(raw) != expected:
        raise DatasetError(
            f"{source} is truncated or malformed ({len(raw)} bytes, expected {expected}): "
            "delete it and fetch it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def read_idx_gz(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise DatasetError(f"{path} is not a readable gzip file ({error}): delete it") from None
    return parse_idx(raw, path)


def logit_transform(v: Tensor) -> Tensor:
    """Pixel space [0, 256) → logit space."""
    return torch.logit(LOGIT_LAMBDA + (1 - 2 * LOGIT_LAMBDA) * v / 256)


def logit_log_jacobian(x: Tensor) -> Tensor:
    """log|det ∂x/∂v| per sample for x = logit_transform(v), from x."""
    constant = math.log1p(-2 * LOGIT_LAMBDA) - math.log(256)
    return (constant - F.logsigmoid(x) - F.logsigmoid(-x)).sum(-1)


def _images(path: Path) -> Tensor:
    images = read_idx_gz(path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetError(f"{path}: expected uint8 images of 28×28, got {images.shape}")
    return torch.from_numpy(images.reshape(len(images), DIM).astype(np.float32))


def fetch_mnist(data_dir: Path) -> None:
    for remote in FILES.values():
        ensure(remote, data_dir, "mnist")


def mnist_cached(data_dir: Path) -> bool:
    return all((data_dir / remote.path).is_file() for remote in FILES.values())


def load_mnist(dim: int, data_dir: Path) -> Data:
    train_pixels = _images(ensure(FILES["train"], data_dir, "mnist"))
    test_pixels = _images(ensure(FILES["test"], data_dir, "mnist"))
    generator = torch.Generator().manual_seed(MNIST_SEED)

    def preprocess(pixels: Tensor) -> Tensor:
        noise = torch.rand(pixels.shape, generator=generator, dtype=torch.float64)
        return logit_transform(pixels.double() + noise).float()

    train = preprocess(train_pixels)
    n_valid = min(N_VALID, len(train) // 6)
    return Data(
        name="mnist",
        train=train[:-n_valid],
        valid=train[-n_valid:],
        test=preprocess(test_pixels),
        log_jacobian=logit_log_jacobian,
    )


register(
    DatasetInfo(
        name="mnist",
        summary="MNIST digits, dequantized + logit (Jacobian counted: nats in pixel space)",
        dim=DIM,
        splits="train 50,000 / valid 10,000 / test 10,000 images",
        seed=MNIST_SEED,
        truth=False,
        load=load_mnist,
        fetch=fetch_mnist,
        cached=mnist_cached,
    )
)
