"""lu: the nflows P·L·U flow is the dense flow with W = L·U·P, and its update is the exact
gradient, checked against slogdet on the explicitly assembled W."""

import torch
import torch.nn.functional as F
from nflows.transforms import LULinear, RandomPermutation
from torch import Tensor

from baselines.adapter import TransformFlow
from bench.registry import METHODS, RunSpec
from tests.test_snf import dense_log_prob

DIM, LAYERS = 5, 3


def build() -> TransformFlow:
    flow = METHODS["lu"].build(RunSpec(DIM, LAYERS, dtype=torch.float64, seed=1))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return flow


def assembled_weight(linear: LULinear, permutation: Tensor) -> Tensor:
    """W = L U P from the raw LU parameters, independently of nflows' own assembly."""
    dim = linear.features
    rows, cols = torch.tril_indices(dim, dim, -1)
    lower = torch.eye(dim, dtype=linear.lower_entries.dtype).index_put(
        (rows, cols), linear.lower_entries
    )
    upper_diag = F.softplus(linear.unconstrained_upper_diag) + linear.eps
    upper_rows, upper_cols = torch.triu_indices(dim, dim, 1)
    upper = torch.diag(upper_diag).index_put((upper_rows, upper_cols), linear.upper_entries)
    return lower @ upper @ torch.eye(dim, dtype=upper.dtype)[permutation]


def dense_equivalent(flow: TransformFlow, x: Tensor) -> Tensor:
    steps = list(flow.transform._transforms)
    permutations = [s._permutation for s in steps if isinstance(s, RandomPermutation)]
    linears = [s for s in steps if isinstance(s, LULinear)]
    weights = [assembled_weight(lin, p) for lin, p in zip(linears, permutations, strict=True)]
    return dense_log_prob(weights, [lin.bias for lin in linears], x)


def data() -> Tensor:
    generator = torch.Generator().manual_seed(2)
    return 1.5 * torch.randn(8, DIM, generator=generator, dtype=torch.float64)


def test_log_prob_is_the_dense_flow_with_w_equal_lup() -> None:
    flow, x = build(), data()
    torch.testing.assert_close(flow.log_prob(x), dense_equivalent(flow, x))


def test_update_direction_is_the_slogdet_gradient() -> None:
    flow, x = build(), data()
    params = list(flow.parameters())
    flow.zero_grad()
    flow.loss(x).backward()
    want = torch.autograd.grad(-dense_equivalent(flow, x).mean(), params)
    for p, expected in zip(params, want, strict=True):
        torch.testing.assert_close(p.grad, expected)


def test_starts_as_permutations() -> None:
    flow = METHODS["lu"].build(RunSpec(DIM, LAYERS, dtype=torch.float64, seed=1))
    weights = [s.weight() for s in flow.transform._transforms if isinstance(s, LULinear)]
    for w in weights:
        torch.testing.assert_close(w, torch.eye(DIM, dtype=w.dtype), atol=1e-6, rtol=0)
