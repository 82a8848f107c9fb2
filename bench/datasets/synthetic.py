r"""Synthetic data sets whose true density is known exactly, at any D.

``gaussian``: x ~ N(μ, Σ) with Σ = Q diag(λ) Qᵀ, Q a random rotation and the eigenvalues λ
log-spaced from 0.1 to 10 (condition number 100 at every D), μ ~ N(0, 1). The best any model can
do is the entropy H = (D/2)(1 + log 2π) + ½ Σ log λ_i, which an affine flow can reach.

``teacher``: x = f(s) with independent unit-variance Laplace sources s and a fixed random
invertible network f (two affine layers with a smooth leaky ReLU between them, the generative
direction of the dense flow). Because we draw s ourselves, log p(x) is exact without inverting f:

.. math:: \log p(x) = \log p_s(s) - \sum_l \log|\det W_l| - \sum_i \log s'(y_{1,i}).

Both are drawn in float64 from a generator seeded with the entry's seed and D, and stored in
float32; the true log-density of each test sample is kept in float64.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from bench.datasets.base import Data, DatasetInfo, register
from relgrad_impl import smooth_leaky_relu, smooth_leaky_relu_log_derivative

N_TRAIN = 20_000
N_TEST = 10_000
GAUSSIAN_SEED = 1234
TEACHER_SEED = 4321
TEACHER_LAYERS = 2
TEACHER_LOG_SCALE = math.log(2.0)  # singular values of each W_l in [1/2, 2]
LAPLACE_SCALE = 1 / math.sqrt(2)  # unit variance
SPLITS = f"train {N_TRAIN:,} / test {N_TEST:,} samples"


def _generator(seed: int, dim: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + dim)


def random_rotation(dim: int, generator: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


# ---------------------------------------------------------------------------------- gaussian


def gaussian_spectrum(dim: int) -> Tensor:
    """Covariance eigenvalues, log-spaced from 0.1 to 10."""
    if dim == 1:
        return torch.ones(1, dtype=torch.float64)
    return torch.logspace(-1, 1, dim, dtype=torch.float64)


def gaussian_entropy(eigenvalues: Tensor) -> float:
    dim = eigenvalues.numel()
    return 0.5 * dim * (1 + math.log(2 * math.pi)) + 0.5 * eigenvalues.log().sum().item()


def gaussian_parameters(dim: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """μ, the eigenvalues λ and the rotation Q of Σ = Q diag(λ) Qᵀ."""
    rotation = random_rotation(dim, generator)
    mean = torch.randn(dim, generator=generator, dtype=torch.float64)
    return mean, gaussian_spectrum(dim), rotation


def load_gaussian(dim: int, data_dir: Path | None = None) -> Data:
    generator = _generator(GAUSSIAN_SEED, dim)
    mean, eigenvalues, rotation = gaussian_parameters(dim, generator)
    noise = torch.randn(N_TRAIN + N_TEST, dim, generator=generator, dtype=torch.float64)
    x = mean + (noise * eigenvalues.sqrt()) @ rotation.T
    # log N(x; μ, Σ) with Σ^{-1/2} (x − μ) = noise (the rotation is orthogonal).
    log_prob = -0.5 * (noise.square().sum(-1) + dim * math.log(2 * math.pi))
    log_prob = log_prob - 0.5 * eigenvalues.log().sum()
    return Data(
        name="gaussian",
        train=x[:N_TRAIN].float(),
        test=x[N_TRAIN:].float(),
        true_log_prob_test=log_prob[N_TRAIN:],
        entropy=gaussian_entropy(eigenvalues),
    )


# ----------------------------------------------------------------------------------- teacher


@dataclass(frozen=True)
class Teacher:
    """x = f(s): y_l = W_l h_{l-1} + b_l, h_l = s(y_l) for l < L, x = y_L."""

    weights: tuple[Tensor, ...]
    biases: tuple[Tensor, ...]

    @classmethod
    def random(cls, dim: int, generator: torch.Generator, layers: int = TEACHER_LAYERS):
        weights, biases = [], []
        for _ in range(layers):
            u, v = random_rotation(dim, generator), random_rotation(dim, generator)
            log_sv = 2 * torch.rand(dim, generator=generator, dtype=torch.float64) - 1
            weights.append(u @ torch.diag(torch.exp(TEACHER_LOG_SCALE * log_sv)) @ v)
            biases.append(0.5 * torch.randn(dim, generator=generator, dtype=torch.float64))
        return cls(tuple(weights), tuple(biases))

    def forward(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """x = f(s) and log|det ∂f/∂s| per sample."""
        h = s
        log_det = s.new_zeros(s.shape[:-1])
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            y = h @ weight.T + bias
            log_det = log_det + torch.linalg.slogdet(weight).logabsdet
            if index < last:
                log_det = log_det + smooth_leaky_relu_log_derivative(y).sum(-1)
                h = smooth_leaky_relu(y)
            else:
                h = y
        return h, log_det


def laplace_log_prob(s: Tensor) -> Tensor:
    """Σ_i log Laplace(s_i; 0, b) with unit variance (b = 1/√2)."""
    return -(s.abs() / LAPLACE_SCALE + math.log(2 * LAPLACE_SCALE)).sum(-1)


def sample_teacher(
    teacher: Teacher, n: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """n sources s, samples x = f(s) and their exact log p(x) = log p_s(s) − log|det J_f(s)|."""
    dim = teacher.weights[0].shape[0]
    # Laplace by inverse CDF of a uniform on (−½, ½).
    u = torch.rand(n, dim, generator=generator, dtype=torch.float64) - 0.5
    u = u.clamp(-0.5 + 1e-12, 0.5 - 1e-12)
    s = -LAPLACE_SCALE * torch.sign(u) * torch.log1p(-2 * u.abs())
    x, log_det = teacher.forward(s)
    return s, x, laplace_log_prob(s) - log_det


def load_teacher(dim: int, data_dir: Path | None = None) -> Data:
    generator = _generator(TEACHER_SEED, dim)
    teacher = Teacher.random(dim, generator)
    _, x, log_prob = sample_teacher(teacher, N_TRAIN + N_TEST, generator)
    return Data(
        name="teacher",
        train=x[:N_TRAIN].float(),
        test=x[N_TRAIN:].float(),
        true_log_prob_test=log_prob[N_TRAIN:],
    )


register(
    DatasetInfo(
        name="gaussian",
        summary="N(μ, Σ), spectrum log-spaced 0.1…10; true NLL = entropy",
        dim=None,
        splits=SPLITS,
        seed=GAUSSIAN_SEED,
        truth=True,
        load=load_gaussian,
    )
)
register(
    DatasetInfo(
        name="teacher",
        summary="x = f(s), Laplace sources, random 2-layer smooth-leaky-ReLU f; exact log p",
        dim=None,
        splits=SPLITS,
        seed=TEACHER_SEED,
        truth=True,
        load=load_teacher,
    )
)
