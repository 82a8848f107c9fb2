r"""nflows' MAF, affine-coupling RealNVP and rational-quadratic coupling NSF as methods.

Each is a stack of nflows transforms with a standard normal base (:class:`TransformFlow`),
trained by exact autograd. Sizes (``spec.hyper`` overrides ``hidden`` and, for nsf, ``bins``):

- depth: every feature is transformed L = ``spec.layers`` times, as in the L-layer dense flow:
  L masked autoregressive steps for ``maf`` (order reversed before each); 2L couplings for
  ``realnvp`` and ``nsf`` (a coupling transforms half the features; masks alternate even/odd).
- conditioners: the smallest standard one, a single ReLU hidden layer of width H.
- width: ``maf`` and ``realnvp`` H = D, the dense layer's width (H ≥ D − 1 is also what MADE's
  sequential degrees need to let each feature see every feature before it); ``nsf`` 4 bins,
  linear tails outside [−5, 5] and H = ⌈D/4⌉.

So all three cost O(B·D²) per step, like the dense flow, and hold about the same number of
trainable parameters as each other, ≈ 3·L·D² (≈ 3× the dense flow's L·D², which MAF cannot go
below without cutting MADE's connectivity); ``params`` records the exact count.

References:
    Papamakarios et al., "Masked autoregressive flow for density estimation", NeurIPS 2017.
    Dinh et al., "Density estimation using Real NVP", ICLR 2017.
    Durkan et al., "Neural spline flows", NeurIPS 2019.
"""

from collections.abc import Callable

from nflows.transforms import (
    AffineCouplingTransform,
    CompositeTransform,
    MaskedAffineAutoregressiveTransform,
    PiecewiseRationalQuadraticCouplingTransform,
    ReversePermutation,
    Transform,
)
from nflows.utils.torchutils import create_alternating_binary_mask
from torch import Tensor, nn

from baselines.adapter import TransformFlow, build_seeded
from bench.registry import RunSpec

Coupling = Callable[[Tensor, Callable[[int, int], nn.Module]], Transform]


class OneHiddenLayer(nn.Sequential):
    r"""Linear → ReLU → Linear, taking (and ignoring) nflows' ``context`` argument.

    ``hidden_features`` is read by nflows' spline couplings to scale the bin logits by 1/√H.
    """

    def __init__(self, features_in: int, features_out: int, hidden: int) -> None:
        super().__init__(nn.Linear(features_in, hidden), nn.ReLU(), nn.Linear(hidden, features_out))
        self.hidden_features = hidden

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(inputs)


def _hidden(spec: RunSpec, default: int) -> int:
    return int(spec.hyper.get("hidden", default))


def maf_transform(dim: int, steps: int, hidden: int) -> CompositeTransform:
    r"""``steps`` masked affine autoregressive transforms, feature order reversed before each."""
    layers: list[Transform] = []
    for _ in range(steps):
        layers.append(ReversePermutation(dim))
        layers.append(
            MaskedAffineAutoregressiveTransform(
                dim, hidden, num_blocks=0, use_residual_blocks=False
            )
        )
    return CompositeTransform(layers)


def coupling_transform(dim: int, couplings: int, hidden: int, coupling: Coupling) -> Transform:
    r"""``couplings`` coupling transforms with alternating even/odd masks."""
    masks = (create_alternating_binary_mask(dim, even=index % 2 == 0) for index in range(couplings))
    return CompositeTransform(
        [coupling(mask, lambda n_in, n_out: OneHiddenLayer(n_in, n_out, hidden)) for mask in masks]
    )


def build_maf(spec: RunSpec) -> TransformFlow:
    r"""The ``maf`` method: L autoregressive steps, hidden width H."""
    return build_seeded(spec, lambda: maf_transform(spec.dim, spec.layers, _hidden(spec, spec.dim)))


def build_realnvp(spec: RunSpec) -> TransformFlow:
    r"""The ``realnvp`` method: 2L affine couplings, hidden width H."""
    return build_seeded(
        spec,
        lambda: coupling_transform(
            spec.dim, 2 * spec.layers, _hidden(spec, spec.dim), AffineCouplingTransform
        ),
    )


def build_nsf(spec: RunSpec) -> TransformFlow:
    r"""The ``nsf`` method: 2L rational-quadratic spline couplings, hidden width H."""
    hidden = _hidden(spec, -(-spec.dim // 4))

    def spline(mask: Tensor, conditioner: Callable[[int, int], nn.Module]) -> Transform:
        return PiecewiseRationalQuadraticCouplingTransform(
            mask,
            conditioner,
            num_bins=int(spec.hyper.get("bins", 4)),
            tails="linear",
            tail_bound=5.0,
        )

    return build_seeded(spec, lambda: coupling_transform(spec.dim, 2 * spec.layers, hidden, spline))
