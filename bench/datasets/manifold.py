r"""``manifold``: a d-dimensional density on a curved d-dimensional manifold in R^D, truth known.

Latent s ∈ R^d with independent unit-variance Laplace coordinates, pushed through a fixed random
injective smooth map f: R^d → R^D,

.. math:: y = A s + b_1, \qquad x = f(s) = W \sigma(y) + b_2, \qquad
          J_f(s) = W \operatorname{diag}(\sigma'(y)) A \in \mathbb{R}^{D \times d},

with A = U diag(λ) V (U: D×d with orthonormal columns, λ ∈ [½, 2]), W a random rotation and
σ the smooth leaky ReLU (strictly increasing): f is injective, and curved wherever d < D. The
true density of x with respect to the manifold's volume is

.. math:: \log p(x) = \log p_s(s) - \tfrac12 \log\det\big(J_f^\top J_f\big), \qquad
          J_f^\top J_f = A^\top \operatorname{diag}(\sigma'(y)^2) A \quad (O(D·d^2)),

which is what an injective flow's ``log_prob`` estimates, so the gap is known at any (d, D).
d is :func:`relgrad_impl.rectangular.default_latent_dims` (max(1, ⌊D/4⌋)), the same default
the rectangular methods use; d = D only where D < 4 forces it (then the "manifold" is R^D).

References:
    Caterini et al., "Rectangular flows for manifold learning", NeurIPS 2021.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from bench.datasets.base import Data, DatasetInfo, register
from bench.datasets.synthetic import (
    LAPLACE_SCALE,
    N_TEST,
    N_TRAIN,
    SPLITS,
    laplace_log_prob,
    random_rotation,
)
from relgrad_impl import smooth_leaky_relu, smooth_leaky_relu_log_derivative
from relgrad_impl.rectangular import default_latent_dims

MANIFOLD_SEED = 2468
LOG_SCALE = math.log(2.0)  # singular values in [1/2, 2]
CHUNK_ELEMENTS = 2**24  # per chunk of the (n, D, d) tensor σ'(y) ⊙ A


def _singular_values(n: int, generator: torch.Generator) -> Tensor:
    return torch.exp(LOG_SCALE * (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1))


@dataclass(frozen=True)
class InjectiveMap:
    r"""x = W σ(A s + b₁) + b₂ from R^d to R^D, W orthogonal."""

    a: Tensor
    b1: Tensor
    w: Tensor
    b2: Tensor

    @classmethod
    def random(cls, latent: int, dim: int, generator: torch.Generator) -> "InjectiveMap":
        u = random_rotation(dim, generator)[:, :latent]
        a = u * _singular_values(latent, generator) @ random_rotation(latent, generator)
        w = random_rotation(dim, generator)
        b1, b2 = (0.5 * torch.randn(dim, generator=generator, dtype=torch.float64) for _ in "12")
        return cls(a, b1, w, b2)

    def __call__(self, s: Tensor) -> Tensor:
        return smooth_leaky_relu(s @ self.a.T + self.b1) @ self.w.T + self.b2

    def gram_log_det(self, s: Tensor) -> Tensor:
        r"""log det(J_fᵀ J_f) = log det(Aᵀ diag(σ'(y)²) A) per sample (W is orthogonal)."""
        slope = smooth_leaky_relu_log_derivative(s @ self.a.T + self.b1).exp()
        scaled = slope.unsqueeze(-1) * self.a
        return torch.linalg.slogdet(scaled.mT @ scaled).logabsdet


def sample_laplace(n: int, latent: int, generator: torch.Generator) -> Tensor:
    r"""Unit-variance Laplace as b·(E₁ − E₂) with E ~ Exp(1) = −log U."""
    u = torch.rand(2, n, latent, generator=generator, dtype=torch.float64)
    e = -torch.log1p(-u)
    return LAPLACE_SCALE * (e[0] - e[1])


def true_log_prob(f: InjectiveMap, s: Tensor) -> Tensor:
    r"""log p(f(s)) = log p_s(s) − ½ log det(J_fᵀ J_f), in chunks that bound the memory."""
    rows = max(1, CHUNK_ELEMENTS // f.a.numel())
    log_det = torch.cat([f.gram_log_det(chunk) for chunk in s.split(rows)])
    return laplace_log_prob(s) - 0.5 * log_det


def sample_manifold(f: InjectiveMap, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n samples x = f(s) and their true log-density on the manifold."""
    s = sample_laplace(n, f.a.shape[1], generator)
    return f(s), true_log_prob(f, s)


def load_manifold(dim: int, data_dir: Path | None = None) -> Data:
    generator = torch.Generator().manual_seed(MANIFOLD_SEED * 1_000_003 + dim)
    latent = default_latent_dims(dim)
    f = InjectiveMap.random(latent, dim, generator)
    x, log_prob = sample_manifold(f, N_TRAIN + N_TEST, generator)
    return Data(
        name="manifold",
        train=x[:N_TRAIN].float(),
        test=x[N_TRAIN:].float(),
        true_log_prob_test=log_prob[N_TRAIN:],
        notes={
            "latent_dims": str(latent),
            "truth": "density on the manifold (volume measure), comparable with injective "
            "flows' log_prob only",
        },
    )


register(
    DatasetInfo(
        name="manifold",
        summary="Laplace latent (d = max(1, D/4)) through a random injective map into R^D; "
        "exact density on the manifold",
        dim=None,
        splits=SPLITS,
        seed=MANIFOLD_SEED,
        truth=True,
        load=load_manifold,
    )
)
