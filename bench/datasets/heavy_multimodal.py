r"""Synthetic data sets with an exact density that a normal-base flow finds hard, at any D.

``teacher-t``: the ``teacher`` network x = f(s) with heavy-tailed sources: s_i = t_i/√3 with
t_i ~ Student-t(ν = 3), so unit variance and a power-law tail (no fourth moment). A Lipschitz
flow from a Gaussian cannot reach such tails (Jaini et al. 2020); a heavy-tailed base can.

.. math:: \log p(x) = \sum_i \big(\log t_3(\sqrt3\, s_i) + \tfrac12\log 3\big)
          - \log|\det J_f(s)|.

``mixture``: a mixture of M = 8 Gaussians N(μ_m, σ_m² I) with weights π_m ∝ m, means
μ_m ~ N(0, 4² I) and scales σ_m log-spaced from 0.5 to 1 — well separated at every D:

.. math:: \log p(x) = \operatorname{logsumexp}_m \big(\log\pi_m + \log N(x; μ_m, σ_m^2 I)\big).

Both are drawn in float64 from a generator seeded with the entry's seed and D (Student-t
sources as N/√(χ²₃/3) from Gaussians, so the generator decides everything) and stored in
float32, the true log-density of each test sample in float64.

References:
    Jaini et al., "Tails of Lipschitz triangular flows", ICML 2020.
    Laszkiewicz, Lederer & Fischer, "Copula-based normalizing flows", ICML INNF+ workshop 2021.
"""

import math
from pathlib import Path

import torch
from torch import Tensor

from bench.datasets.base import Data, DatasetInfo, register
from bench.datasets.synthetic import N_TEST, N_TRAIN, SPLITS, Teacher, _generator
from relgrad_impl.bases import StudentT

TEACHER_T_SEED = 5321
MIXTURE_SEED = 6421
SOURCE_DF = 3
MIXTURE_COMPONENTS = 8
MIXTURE_SPREAD = 4.0


def unit_student_t_sources(n: int, dim: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    r"""s = t/√(ν/(ν−2)) with t ~ t_ν (unit variance), and Σ_i log p(s_i) per sample."""
    shape = (n, dim)
    normal = torch.randn(shape, generator=generator, dtype=torch.float64)
    chi2 = torch.randn((*shape, SOURCE_DF), generator=generator, dtype=torch.float64).square()
    t = normal / (chi2.sum(-1) / SOURCE_DF).sqrt()
    scale = math.sqrt(SOURCE_DF / (SOURCE_DF - 2))
    log_prob = StudentT(SOURCE_DF, dtype=torch.float64).log_prob(t) + dim * math.log(scale)
    return t / scale, log_prob


def load_teacher_t(dim: int, data_dir: Path | None = None) -> Data:
    generator = _generator(TEACHER_T_SEED, dim)
    teacher = Teacher.random(dim, generator)
    s, log_prob_s = unit_student_t_sources(N_TRAIN + N_TEST, dim, generator)
    x, log_det = teacher.forward(s)
    log_prob = log_prob_s - log_det
    return Data(
        name="teacher-t",
        train=x[:N_TRAIN].float(),
        test=x[N_TRAIN:].float(),
        true_log_prob_test=log_prob[N_TRAIN:],
    )


class GaussianMixture:
    r"""Σ_m π_m N(μ_m, σ_m² I): exact log-density and sampling."""

    def __init__(self, dim: int, generator: torch.Generator) -> None:
        m = MIXTURE_COMPONENTS
        weights = torch.arange(1, m + 1, dtype=torch.float64)
        self.log_weights = (weights / weights.sum()).log()
        self.means = MIXTURE_SPREAD * torch.randn(m, dim, generator=generator, dtype=torch.float64)
        self.scales = torch.logspace(math.log10(0.5), 0.0, m, dtype=torch.float64)

    def log_prob(self, x: Tensor) -> Tensor:
        dim = x.shape[-1]
        u = (x.unsqueeze(-2) - self.means) / self.scales.unsqueeze(-1)  # (n, M, D)
        log_normal = -0.5 * (u.square().sum(-1) + dim * math.log(2 * math.pi))
        log_normal = log_normal - dim * self.scales.log()
        return torch.logsumexp(self.log_weights + log_normal, dim=-1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        label = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return self.means[label] + self.scales[label].unsqueeze(-1) * noise


def load_mixture(dim: int, data_dir: Path | None = None) -> Data:
    generator = _generator(MIXTURE_SEED, dim)
    mixture = GaussianMixture(dim, generator)
    x = mixture.sample(N_TRAIN + N_TEST, generator)
    return Data(
        name="mixture",
        train=x[:N_TRAIN].float(),
        test=x[N_TRAIN:].float(),
        true_log_prob_test=mixture.log_prob(x[N_TRAIN:]),
    )


ENTRIES = (
    (
        "teacher-t",
        "x = f(s), unit-variance Student-t (ν = 3) sources, the teacher's f; exact log p",
        TEACHER_T_SEED,
        load_teacher_t,
    ),
    (
        "mixture",
        "8 separated Gaussians N(μ_m, σ_m² I), weights ∝ m; exact log p",
        MIXTURE_SEED,
        load_mixture,
    ),
)
for name, summary, seed, load in ENTRIES:
    register(DatasetInfo(name, summary, None, SPLITS, seed, truth=True, load=load))
