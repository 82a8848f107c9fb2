r"""An nflows transform x → z with a standard normal base, behind the method contract.

.. math:: \log p(x) = \sum_i \log \mathcal{N}(z_i) + \log |\det \partial z / \partial x|,

with the log-determinant as the transform returns it. Training is plain autograd on
:math:`-\operatorname{mean} \log p(x)`, so every baseline's update is the exact gradient.
"""

from collections.abc import Callable

import torch
from nflows.transforms import Transform
from torch import Tensor, nn

from baselines.nflows_compat import patch_nflows
from bench.registry import RunSpec
from relgrad_impl.bases import StandardNormal

patch_nflows()


class TransformFlow(nn.Module):
    r"""Normalizing flow from one nflows ``Transform`` (data to noise) and N(0, I).

    Arguments:
        transform: The transform x → z; its forward returns (z, log|det ∂z/∂x|).
    """

    def __init__(self, transform: Transform) -> None:
        super().__init__()
        self.transform = transform
        self.base: nn.Module = StandardNormal()  # p_Z; any module with log_prob(z)

    def forward(self, x: Tensor) -> Tensor:
        r"""z = g(x)."""
        return self.transform(x)[0]

    def log_prob(self, x: Tensor) -> Tensor:
        r"""Exact log p(x) per sample."""
        z, log_det = self.transform(x)
        return self.base.log_prob(z) + log_det

    def loss(self, x: Tensor) -> Tensor:
        r"""−mean log p(x); its gradient is the exact one."""
        return -self.log_prob(x).mean()


def build_seeded(spec: RunSpec, make_transform: Callable[[], Transform]) -> TransformFlow:
    r"""Build under ``spec.seed`` (nflows draws from torch's global generator, which is restored
    afterwards), then move to ``spec.device`` and ``spec.dtype``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        flow = TransformFlow(make_transform())
    return flow.to(device=spec.device, dtype=spec.dtype)
