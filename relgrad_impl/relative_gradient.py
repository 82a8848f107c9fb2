r"""The relative gradient of an affine layer, as a drop-in autograd function.

For the augmented affine map :math:`A = \begin{pmatrix} W & b \\ 0 & 1 \end{pmatrix}` acting on
:math:`\tilde h = (h, 1)`, the relative gradient of a loss :math:`\mathcal{L}` is

.. math:: \nabla_A \mathcal{L} \, A^\top A .

With :math:`\Delta = \partial \mathcal{L} / \partial Y` (B×D), :math:`\tilde H = [H, 1]` and the
pre-activation :math:`Y = H W^\top + 1 b^\top` the data part is

.. math:: \Delta^\top \tilde H A^\top A = \Delta^\top \big( [Y, 1] A \big)
          = \big[\, \Delta^\top (Y W),\; \Delta^\top (Y b + 1) \,\big],

two (B×D)(D×D) products, never the O(D³) product :math:`(\Delta^\top H) W^\top W`. The log-det
part needs neither inverse nor determinant: :math:`\nabla_W \log|\det W| = W^{-\top}`, so its
relative gradient is :math:`W^{-\top} [W^\top W, W^\top b] = [W, b]`.

Whatever optimizer reads ``.grad`` (SGD, Adam, ...) then follows the relative gradient. All
gradient that reaches W and b must flow through :func:`relative_affine` for this to hold; a
penalty applied to W elsewhere would contribute its Euclidean gradient.

References:
    Gresele et al., "Relative gradient optimization of the Jacobian term in unsupervised deep
    learning", NeurIPS 2020.
"""

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class _RelativeAffine(torch.autograd.Function):
    @staticmethod
    def forward(h: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        y = torch.addmm(bias, h, weight.t())
        return y, y.new_zeros(())

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ...], output: tuple[Tensor, Tensor]) -> None:
        _, weight, bias = inputs
        y, _ = output
        ctx.save_for_backward(y, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_y: Tensor, grad_log_det: Tensor
    ) -> tuple[Tensor | None, Tensor, Tensor]:
        y, weight, bias = ctx.saved_tensors
        grad_h = None
        if ctx.needs_input_grad[0]:
            # Δ W and Y W share W: one (2B×D)(D×D) product uses the BLAS better than two.
            grad_h, y_weight = torch.cat([grad_y, y]).mm(weight).split(len(y))
        else:
            y_weight = y.mm(weight)
        # Product order is the whole point: (Y W) first keeps this O(B·D²).
        grad_weight = grad_y.t().mm(y_weight).addcmul_(weight, grad_log_det)
        grad_bias = torch.addmv(bias * grad_log_det, grad_y.t(), y.mv(bias) + 1)
        return grad_h, grad_weight, grad_bias


def relative_affine(h: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    r"""Affine layer :math:`y = h W^\top + b` whose backward returns the relative gradient.

    Arguments:
        h: The layer input, with shape (B, D).
        weight: W, with shape (D, D).
        bias: b, with shape (D,).

    Returns:
        The pre-activation y, with shape (B, D), and a zero-valued scalar that stands in for
        :math:`\log|\det W|`: add it to your log-likelihood (subtract it from your loss) and its
        backward contributes the relative gradient :math:`[W, b]` of the log-determinant. Its
        value is never computed, which is what makes training O(B·D²).
    """
    return _RelativeAffine.apply(h, weight, bias)
