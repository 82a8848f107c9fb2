r"""The dense flow: L affine layers with smooth leaky ReLUs between them, standard normal base.

.. math:: y_l = W_l h_{l-1} + b_l, \quad h_l = s(y_l) \; (l < L), \quad z = y_L,

.. math:: \log p(x) = \sum_i \log \mathcal{N}(z_i) + \sum_{l<L} \sum_i \log s'(y_{l,i})
          + \sum_l \log |\det W_l| .

How the log-det term is trained is the ``affine`` strategy: an :data:`Affine` maps
(h, W, b) to (y, a stand-in for log|det W|) whose gradient is the method's update direction.
The exact ``log_prob`` always uses :func:`exact_affine`. The base is the module ``base``
(standard normal; :mod:`relgrad_impl.bases` has others): log N(z_i) above becomes its
``log_prob(z)``, and the training strategies are unchanged (the base enters the data term).

References:
    Gresele et al., "Relative gradient optimization of the Jacobian term in unsupervised deep
    learning", NeurIPS 2020.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from relgrad_impl.activations import (
    DEFAULT_ALPHA,
    smooth_leaky_relu,
    smooth_leaky_relu_log_derivative,
)
from relgrad_impl.bases import StandardNormal, standard_normal_log_prob  # noqa: F401

Affine = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def exact_affine(h: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    r"""y = h Wᵀ + b and log|det W| through ``slogdet``: exact, O(D³) forward and backward."""
    return F.linear(h, weight, bias), torch.linalg.slogdet(weight).logabsdet


def affine_without_log_det(h: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    r"""y = h Wᵀ + b with the log-det term dropped: the cost floor, not a density model."""
    return F.linear(h, weight, bias), h.new_zeros(())


class DenseFlow(nn.Module):
    r"""Dense normalizing flow with L layers, the last one affine.

    Arguments:
        dim: The data dimension D.
        layers: The number of affine layers L ≥ 1.
        training_affine: How each layer's log-det term is trained (see :data:`Affine`).
        alpha: The slope α of the smooth leaky ReLU.
        generator: The random generator for the orthogonal initialization of W.
    """

    def __init__(
        self,
        dim: int,
        layers: int,
        training_affine: Affine = exact_affine,
        alpha: float = DEFAULT_ALPHA,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.training_affine = training_affine
        self.alpha = alpha
        self.weights = nn.ParameterList(
            nn.init.orthogonal_(torch.empty(dim, dim), generator=generator) for _ in range(layers)
        )
        self.biases = nn.ParameterList(torch.zeros(dim) for _ in range(layers))
        self.base: nn.Module = StandardNormal()  # p_Z; any module with log_prob(z)

    def forward(self, x: Tensor) -> Tensor:
        r"""z = g(x)."""
        return self._transform(x, exact_affine)[0]

    def _transform(self, x: Tensor, affine: Affine) -> tuple[Tensor, Tensor]:
        h, log_det = x, x.new_zeros(x.shape[:-1])
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            y, layer_log_det = affine(h, weight, bias)
            log_det = log_det + layer_log_det
            if index < last:
                log_det = log_det + smooth_leaky_relu_log_derivative(y, self.alpha).sum(-1)
                h = smooth_leaky_relu(y, self.alpha)
            else:
                h = y
        return h, log_det

    def _log_prob(self, x: Tensor, affine: Affine) -> Tensor:
        z, log_det = self._transform(x, affine)
        return self.base.log_prob(z) + log_det

    def log_prob(self, x: Tensor) -> Tensor:
        r"""Exact log p(x) per sample, with log|det W_l| from ``slogdet``."""
        return self._log_prob(x, exact_affine)

    def loss(self, x: Tensor) -> Tensor:
        r"""The training loss −mean log p(x), its log-det term as the training strategy has it."""
        return -self._log_prob(x, self.training_affine).mean()
