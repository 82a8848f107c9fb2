r"""The dense flow with every W parameterized as P·L·U (nflows ``LULinear``).

.. math:: y_l = L_l U_l P_l h_{l-1} + b_l, \qquad \log|\det W_l| = \sum_i \log|u_{l,ii}|,

with P_l a fixed random permutation, L_l unit lower triangular and U_l upper triangular with
diagonal softplus(·) + 10⁻³ > 0; the same smooth leaky ReLU between layers (the last layer
affine) and the same standard normal base as :class:`relgrad_impl.DenseFlow`. W starts at P
(orthogonal: L = U = I), b at zero. Training is exact autograd; the log-det costs O(D), the
layer O(B·D²) plus O(D²) to assemble L and U.

References:
    Kingma & Dhariwal, "Glow: Generative flow with invertible 1×1 convolutions", NeurIPS 2018.
    Durkan et al., nflows (``nflows.transforms.LULinear``).
"""

from nflows.transforms import CompositeTransform, LULinear, RandomPermutation, Transform
from torch import Tensor

from baselines.adapter import TransformFlow, build_seeded
from bench.registry import RunSpec
from relgrad_impl import smooth_leaky_relu, smooth_leaky_relu_log_derivative
from relgrad_impl.activations import DEFAULT_ALPHA


class SmoothLeakyReLU(Transform):
    r"""The element-wise smooth leaky ReLU as an nflows transform (forward only)."""

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_det = smooth_leaky_relu_log_derivative(inputs, self.alpha).sum(-1)
        return smooth_leaky_relu(inputs, self.alpha), log_det


def lu_transform(dim: int, layers: int) -> CompositeTransform:
    r"""L layers of P·L·U affine maps with smooth leaky ReLUs between them."""
    steps: list[Transform] = []
    for index in range(layers):
        steps += [RandomPermutation(dim), LULinear(dim, identity_init=True)]
        if index < layers - 1:
            steps.append(SmoothLeakyReLU())
    return CompositeTransform(steps)


def build_lu(spec: RunSpec) -> TransformFlow:
    r"""The ``lu`` method: D = ``spec.dim``, L = ``spec.layers``."""
    return build_seeded(spec, lambda: lu_transform(spec.dim, spec.layers))
