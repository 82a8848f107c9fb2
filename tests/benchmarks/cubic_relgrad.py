r"""A deliberately slow relgrad: the same relative gradient in the cubic product order.

The gate's proof needs a *real* regression, not a sleep: this variant computes the data part as
:math:`(\Delta^\top H) W^\top W` — O(D³) per layer — instead of :math:`\Delta^\top ((H W^\top) W)`.
The values are the same (``test_cubic_relgrad.py`` checks it), only the cost changes. It lives on
the test side and is swapped in with a monkeypatch, so production code carries no test hook.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from torch import Tensor

from relgrad_impl import relative_gradient


class CubicRelativeAffine(relative_gradient._RelativeAffine):
    """``_RelativeAffine`` with the O(D³) data-part product order."""

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ...], output: tuple[Tensor, Tensor]) -> None:
        h, weight, bias = inputs
        ctx.save_for_backward(h, weight, bias)

    @staticmethod
    def backward(
        ctx: Any, grad_y: Tensor, grad_log_det: Tensor
    ) -> tuple[Tensor | None, Tensor, Tensor]:
        h, weight, bias = ctx.saved_tensors
        grad_h = grad_y @ weight if ctx.needs_input_grad[0] else None
        grad_bias_data = grad_y.sum(0)
        # [ΔᵀH, Δᵀ1]·AᵀA with the D×D products first: (ΔᵀH)·Wᵀ·W is the cubic order.
        euclidean_times_at = (grad_y.t() @ h) @ weight.t() + torch.outer(grad_bias_data, bias)
        grad_weight = euclidean_times_at @ weight + weight * grad_log_det
        grad_bias = euclidean_times_at @ bias + grad_bias_data + bias * grad_log_det
        return grad_h, grad_weight, grad_bias


@contextmanager
def cubic_relgrad_installed() -> Iterator[None]:
    """Within the block, every ``relative_affine`` call uses the cubic product order."""
    with pytest.MonkeyPatch.context() as patch:
        # relative_affine looks ``_RelativeAffine`` up at call time, so flows built earlier
        # switch too.
        patch.setattr(relative_gradient, "_RelativeAffine", CubicRelativeAffine)
        yield
