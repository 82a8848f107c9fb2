r"""Smooth leaky ReLU, the element-wise non-linearity of the dense flow.

.. math:: s(y) = \alpha y + (1 - \alpha) \operatorname{softplus}(y), \qquad
          s'(y) = \alpha + (1 - \alpha) \sigma(y)

s is strictly increasing with s' in (α, 1), so the flow stays invertible and its Jacobian is
well conditioned.

References:
    Gresele et al., "Relative gradient optimization of the Jacobian term in unsupervised deep
    learning", NeurIPS 2020.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_ALPHA = 0.3


def smooth_leaky_relu(y: Tensor, alpha: float = DEFAULT_ALPHA) -> Tensor:
    r"""s(y) = α y + (1 − α) softplus(y)."""
    return alpha * y + (1 - alpha) * F.softplus(y)


def smooth_leaky_relu_log_derivative(y: Tensor, alpha: float = DEFAULT_ALPHA) -> Tensor:
    r"""log s'(y) = log(α + (1 − α) σ(y)), computed as a log-sum-exp so it never underflows."""
    log_alpha = torch.full_like(y, math.log(alpha))
    return torch.logaddexp(log_alpha, math.log1p(-alpha) + F.logsigmoid(y))
