"""The injected regression changes only the cost of relgrad, never its gradient."""

import torch
from cubic_relgrad import CubicRelativeAffine, cubic_relgrad_installed

from relgrad_impl import relative_affine
from relgrad_impl.relative_gradient import _RelativeAffine


def _gradients(dim: int = 6, batch: int = 5) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    h = torch.randn(batch, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(dim, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(dim, generator=generator, dtype=torch.float64, requires_grad=True)
    y, log_det = relative_affine(h, weight, bias)
    (y.sin().sum() - 3.0 * log_det).backward()
    return [h.grad, weight.grad, bias.grad]


def test_cubic_variant_gives_the_same_gradients() -> None:
    fast = _gradients()
    with cubic_relgrad_installed():
        cubic = _gradients()
    for fast_grad, cubic_grad in zip(fast, cubic, strict=True):
        torch.testing.assert_close(cubic_grad, fast_grad)


def test_cubic_variant_is_removed_after_the_block() -> None:
    from relgrad_impl import relative_gradient

    with cubic_relgrad_installed():
        assert relative_gradient._RelativeAffine is CubicRelativeAffine
    assert relative_gradient._RelativeAffine is _RelativeAffine
