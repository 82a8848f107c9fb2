r"""Self-normalizing dense flow: each layer learns R ≈ W⁻¹ and uses it in place of W⁻ᵀ.

For a layer :math:`z = W h` (bias aside) the likelihood can be written from the forward or the
inverse parameterization, :math:`\log|\det W|` or :math:`-\log|\det R|` with :math:`R = W^{-1}`.
Following Keller et al., W takes the gradient of half the forward form and R the gradient of half
the inverse form, each with the one O(D³) factor replaced by the other matrix:

.. math:: \nabla_W \mathcal{L} \approx \tfrac12 \big(\Delta^\top H - R^\top\big), \qquad
          \nabla_R \mathcal{L} \approx \tfrac12 \big(-\Delta_H^\top Z + W^\top\big),

for :math:`\mathcal{L} = -\operatorname{mean}\log p`, with :math:`\Delta = \partial\mathcal{L}/
\partial Y`, :math:`\Delta_H = \Delta W` the error passed to the layer input and
:math:`Z = H W^\top`. When :math:`R = W^{-1}` both are exactly half the gradient of the exact
negative log-likelihood in their own parameterization. The bias takes its full gradient. A
reconstruction term on the detached layer input trains R towards :math:`W^{-1}` (and W towards
:math:`R^{-1}`):

.. math:: \lambda \operatorname{mean}_b \| h_b - R W h_b \|^2 .

What this file follows from the paper and its public code (akandykeller/SelfNormalizingFlows,
``snf/layers/selfnorm.py`` and ``snf/experiments/selfnorm_fc_mnist.py``): the ½ forward / ½
inverse split above; the reconstruction loss on the bias-free linear map, with the layer input
detached and its gradient reaching both W and R (``only_R_recon=False``), without the symmetric
term ``‖z − W R z‖²`` (``sym_recon_grad=False``); weight λ = 1 there (the registry's ``snf``
uses λ = 10, see ``bench/methods.py``); R initialized as the exact inverse of W (the code's
1×1 / FC initialization uses W orthogonal or identity with R = Wᵀ);
exact backpropagation ΔW to the layer input. One departure: W starts orthogonal from the
run's seed, like every dense method here, and the bias at zero (the code draws a tiny random
bias).

Cost per layer and step: six (B×D)(D×D) products, O(B·D²); the reconstruction and likelihood
gradients share their products. ``log_prob`` stays exact (``slogdet`` of W).

References:
    Keller et al., "Self Normalizing Flows", ICML 2021.
"""

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from relgrad_impl.activations import DEFAULT_ALPHA
from relgrad_impl.dense_flow import DenseFlow, exact_affine


class _SelfNormalizingAffine(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, h: Tensor, weight: Tensor, bias: Tensor, inverse: Tensor, recon_weight: float
    ) -> tuple[Tensor, Tensor]:
        z = h @ weight.t()
        residual = h - z @ inverse.t()
        ctx.save_for_backward(h, weight, inverse, z, residual)
        ctx.recon_weight = recon_weight
        return z + bias, -recon_weight * residual.square().sum(-1).mean()

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor, grad_stand_in: Tensor) -> tuple[Tensor | None, ...]:
        h, weight, inverse, z, residual = ctx.saved_tensors
        grad_h = grad_y @ weight
        # ∂(stand-in)/∂(R W h) = 2λ r / B, times the incoming gradient g of the stand-in.
        scale = 2 * ctx.recon_weight * grad_stand_in / h.shape[0]
        error_w = 0.5 * grad_y + scale * (residual @ inverse)
        grad_weight = torch.addmm(0.5 * grad_stand_in * inverse.t(), error_w.t(), h)
        error_r = scale * residual - 0.5 * grad_h
        grad_inverse = torch.addmm(-0.5 * grad_stand_in * weight.t(), error_r.t(), z)
        grad_h = grad_h if ctx.needs_input_grad[0] else None
        return grad_h, grad_weight, grad_y.sum(0), grad_inverse, None


def self_normalizing_affine(
    h: Tensor, weight: Tensor, bias: Tensor, inverse: Tensor, recon_weight: float = 1.0
) -> tuple[Tensor, Tensor]:
    r"""Affine layer :math:`y = h W^\top + b` trained the self-normalizing way.

    Arguments:
        h: The layer input, with shape (B, D).
        weight: W, with shape (D, D).
        bias: b, with shape (D,).
        inverse: R ≈ W⁻¹, with shape (D, D).
        recon_weight: The weight λ of the reconstruction loss.

    Returns:
        The pre-activation y, with shape (B, D), and a scalar stand-in for
        :math:`\log|\det W|` to add to the log-likelihood. Its value is
        :math:`-\lambda \operatorname{mean}_b \|h_b - R W h_b\|^2` (so the loss carries the
        reconstruction term); its backward gives W the surrogate :math:`\tfrac12 R^\top`, R the
        surrogate :math:`-\tfrac12 W^\top` plus the reconstruction gradients, and, through y,
        the ½ forward / ½ inverse data gradients of the module docstring.
    """
    return _SelfNormalizingAffine.apply(h, weight, bias, inverse, recon_weight)


class SelfNormalizingFlow(DenseFlow):
    r"""Dense flow whose layers each hold W and a learned inverse R ≈ W⁻¹.

    The network, ``forward`` and the exact ``log_prob`` are those of :class:`DenseFlow`; only
    ``loss`` differs, using :func:`self_normalizing_affine` in every layer.

    Arguments:
        dim: The data dimension D.
        layers: The number of affine layers L ≥ 1.
        recon_weight: The weight λ of each layer's reconstruction loss.
        alpha: The slope α of the smooth leaky ReLU.
        generator: The random generator for the orthogonal initialization of W (R = Wᵀ).
    """

    def __init__(
        self,
        dim: int,
        layers: int,
        recon_weight: float = 1.0,
        alpha: float = DEFAULT_ALPHA,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(dim, layers, exact_affine, alpha, generator)
        self.recon_weight = recon_weight
        self.inverses = nn.ParameterList(w.detach().t().clone() for w in self.weights)

    def loss(self, x: Tensor) -> Tensor:
        r"""−mean log p(x) with the self-normalizing log-det surrogate, plus λ·reconstruction."""
        inverses: Iterator[Tensor] = iter(self.inverses)

        def affine(h: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
            return self_normalizing_affine(h, weight, bias, next(inverses), self.recon_weight)

        return -self._log_prob(x, affine).mean()
