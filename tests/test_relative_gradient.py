"""relative_affine on its own: values, standalone use, and that its cost is O(B·D²)."""

import torch

from relgrad_impl import relative_affine, smooth_leaky_relu, smooth_leaky_relu_log_derivative
from tests.reference import backward_flops, relative


def test_forward_is_the_affine_map_and_the_stand_in_is_zero() -> None:
    h, w, b = torch.randn(5, 3), torch.randn(3, 3), torch.randn(3)
    y, log_det = relative_affine(h, w, b)
    torch.testing.assert_close(y, h @ w.T + b)
    assert log_det.item() == 0.0


def test_any_loss_gets_its_relative_gradient() -> None:
    """For an arbitrary loss of y and log|det W|, .grad is the relative gradient of it."""
    h = torch.randn(7, 4, dtype=torch.float64)
    w = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def loss(y, log_det):
        return torch.sin(y).sum() - 2.5 * log_det

    y, log_det = relative_affine(h, w, b)
    loss(y, log_det).backward()
    exact = loss(torch.addmm(b, h, w.T), torch.linalg.slogdet(w).logabsdet)
    grad_w, grad_b = torch.autograd.grad(exact, (w, b))
    want_w, want_b = relative(w.detach(), b.detach(), grad_w, grad_b)
    torch.testing.assert_close(w.grad, want_w)
    torch.testing.assert_close(b.grad, want_b)


def test_smooth_leaky_relu_log_derivative_matches_autograd() -> None:
    y = torch.linspace(-30, 30, 101, dtype=torch.float64, requires_grad=True)
    (derivative,) = torch.autograd.grad(smooth_leaky_relu(y, 0.3).sum(), y)
    torch.testing.assert_close(smooth_leaky_relu_log_derivative(y, 0.3), derivative.log())


def test_backward_is_quadratic_in_dim() -> None:
    """Doubling D at fixed B multiplies the FLOPs by 4, not 8, and they are 3 (B·D²) products."""
    batch = 8
    small, large = (backward_flops(relative_affine, batch, d) for d in (64, 128))
    assert large / small < 4.5
    assert large <= 3 * 2 * batch * 128**2 + 4 * batch * 128
