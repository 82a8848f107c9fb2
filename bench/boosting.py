r"""Gradient boosted normalizing flows around any registered method.

K components g_1 … g_K (each a built method) form the mixture

.. math:: G_K(x) = \sum_c \pi_c\, g_c(x), \qquad \pi_c = r_c / \textstyle\sum_j r_j,

trained one after another: while g_c trains, g_1 … g_{c−1} are frozen (they only score the
batch, under ``no_grad``, and never receive a gradient) and each minibatch is resampled with
replacement with weights ∝ 1/G_{c−1}(x), so g_c fits where the mixture so far is poor. The
weights are those of the authors' public code (``density_experiment.py``): w = softmax(−log
G_{c−1}(x)) over the batch; if some w_i exceeds 0.1, every w_i is clipped to [0.01, 0.1]; then
w is renormalized. g_c is trained with its own ``loss`` (so relgrad stays relgrad, snf stays snf).

Mixture weights: adding g_c gives G_c = (1 − ρ_c) G_{c−1} + ρ_c g_c with
ρ_c = r_c / Σ_{j≤c} r_j, which unrolls to the π above. The default schedule is the code's
``decreasing`` one, r_c = max(2^{−(c−1)}, 0.05); ``uniform`` is r_c = 1. ``fitted`` starts from
``decreasing`` and, while g_c trains, moves ρ_c towards the maximizer of the batch likelihood
mean log((1 − ρ) G_{c−1} + ρ g_c) (concave in ρ; found on a grid) by an exponential moving
average, so ρ_c follows g_c and needs no pass after the last component. (The paper instead
takes a few gradient steps on ρ_c after g_c has trained.)

``log_prob`` is exact: logsumexp_c (log π_c + log g_c(x)) over the components trained so far.
``forward`` is the active component's z. The training loop is unchanged: ``loss`` counts its
calls and moves to the next component every ``steps_per_component`` calls; with
``steps_per_component=None`` (timing) the last component is active from the start, so a timed
step is the costliest one (K − 1 frozen components score the batch, one trains).

References:
    Giaquinto & Banerjee, "Gradient boosted normalizing flows", NeurIPS 2020; public code
    robert-giaquinto/gradient-boosted-normalizing-flows.
"""

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from bench.registry import FlowMethod

WEIGHT_SCHEDULES = ("decreasing", "uniform", "fitted")
CLIP_LOW, CLIP_HIGH = 0.01, 0.1
RHO_GRID = torch.linspace(0.005, 0.995, 199, dtype=torch.float64)
RHO_AVERAGING = 0.05


def initial_weights(components: int, schedule: str) -> Tensor:
    r"""Unnormalized mixture weights r_c: ``decreasing`` max(2^{−(c−1)}, 0.05) or all 1."""
    if schedule not in WEIGHT_SCHEDULES:
        raise ValueError(f"mixture weights: choose one of {', '.join(WEIGHT_SCHEDULES)}")
    if schedule == "uniform":
        return torch.ones(components, dtype=torch.float64)
    return (0.5 ** torch.arange(components, dtype=torch.float64)).clamp(min=0.05)


def resampling_weights(log_mixture: Tensor, low: float = CLIP_LOW, high: float = CLIP_HIGH):
    r"""w ∝ 1/G(x) over the batch, clipped to [low, high] when some w_i > high, normalized."""
    weights = torch.softmax(-log_mixture.double(), dim=0)
    clipped = weights.clamp(low, high)
    weights = torch.where(weights.max() > high, clipped, weights)
    return weights / weights.sum()


def fit_mixing_weight(log_previous: Tensor, log_new: Tensor) -> Tensor:
    r"""argmax over a grid of ρ ∈ (0, 1) of mean log((1 − ρ) G(x) + ρ g(x)) (no host sync)."""
    grid = RHO_GRID.to(log_previous.device)
    pair = torch.stack([log_previous.double(), log_new.double()], dim=-1)  # (B, 2)
    log_weights = torch.stack([torch.log1p(-grid), grid.log()], dim=-1)  # (R, 2)
    scores = torch.logsumexp(pair.unsqueeze(0) + log_weights.unsqueeze(1), dim=-1).mean(-1)
    return grid[scores.argmax()]


class BoostedFlow(nn.Module):
    r"""A mixture of K flows trained by gradient boosting (see the module docstring).

    Arguments:
        components: K built methods (same D), each with ``loss`` and ``log_prob``.
        steps_per_component: Training steps of each component; None: the last one is active.
        schedule: ``decreasing`` (the paper's default), ``uniform`` or ``fitted``.
        seed: The seed of the minibatch resampling.
    """

    def __init__(
        self,
        components: Sequence[FlowMethod],
        steps_per_component: int | None,
        schedule: str = "decreasing",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.components = nn.ModuleList(components)
        self.register_buffer("mixture_weights", initial_weights(len(components), schedule))
        self.fitted = schedule == "fitted"
        self.steps_per_component = steps_per_component
        self.active = len(components) - 1 if steps_per_component is None else 0
        self.steps_taken = 0
        self.seed = seed
        self._generator: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        r"""z = g_c(x) of the active component c."""
        return self.components[self.active](x)

    def _log_mixture(self, x: Tensor, count: int) -> Tensor:
        r"""log G over the first ``count`` components, exact through logsumexp."""
        log_weights = self.mixture_weights[:count].log() - self.mixture_weights[:count].sum().log()
        terms = [c.log_prob(x) for c in self.components[:count]]
        return torch.logsumexp(torch.stack(terms) + log_weights.to(x).unsqueeze(-1), dim=0)

    def log_prob(self, x: Tensor) -> Tensor:
        r"""Exact log G(x) of the mixture of the components trained so far."""
        return self._log_mixture(x, self.active + 1)

    def resample(self, x: Tensor, log_previous: Tensor) -> Tensor:
        r"""The batch drawn with replacement with weights ∝ 1/G_{c−1}(x), clipped."""
        weights = resampling_weights(log_previous)
        if self._generator is None or self._generator.device != weights.device:
            self._generator = torch.Generator(weights.device).manual_seed(self.seed)
        index = torch.multinomial(weights, len(x), replacement=True, generator=self._generator)
        return x[index]

    def loss(self, x: Tensor) -> Tensor:
        r"""The active component's own loss on the resampled batch."""
        self._advance_if_due()
        self.steps_taken += 1
        component = self.components[self.active]
        if self.active == 0:
            return component.loss(x)
        with torch.no_grad():
            log_previous = self._log_mixture(x, self.active)
            if self.fitted:
                self._update_mixing_weight(log_previous, component.log_prob(x))
        return component.loss(self.resample(x, log_previous))

    def _advance_if_due(self) -> None:
        per = self.steps_per_component
        if per is not None and self.steps_taken >= per * (self.active + 1):
            self.active = min(self.active + 1, len(self.components) - 1)

    def _update_mixing_weight(self, log_previous: Tensor, log_new: Tensor) -> None:
        r"""ρ_c ← ρ_c + β (ρ*_batch − ρ_c), stored as r_c = ρ_c/(1 − ρ_c) · Σ_{j<c} r_j."""
        c, weights = self.active, self.mixture_weights
        previous = weights[:c].sum()
        rho = weights[c] / (previous + weights[c])
        rho = rho + RHO_AVERAGING * (fit_mixing_weight(log_previous, log_new) - rho)
        weights[c] = rho / (1 - rho) * previous


def mixing_weights(flow: BoostedFlow) -> list[float]:
    r"""π_c of the components trained so far (for reports and tests)."""
    weights = flow.mixture_weights[: flow.active + 1]
    return (weights / weights.sum()).tolist()


def default_steps(total_steps: int, components: int) -> int:
    r"""Steps of each component so that all K together take ``total_steps``: ⌈N/K⌉."""
    return math.ceil(total_steps / components)
