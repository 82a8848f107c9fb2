"""snf: its update equals the ½ forward / ½ inverse exact gradient when R = W⁻¹, and its
reconstruction term is the autograd gradient of λ·mean‖h − R W h‖² and pulls R to W⁻¹."""

import torch
from torch import Tensor, nn
from torch.func import functional_call

from bench.registry import METHODS, RunSpec
from relgrad_impl import (
    DenseFlow,
    SelfNormalizingFlow,
    self_normalizing_affine,
    smooth_leaky_relu,
)
from tests.reference import backward_flops

DIM, LAYERS = 4, 3


class _LogProb(nn.Module):
    def __init__(self, flow: DenseFlow) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, x: Tensor) -> Tensor:
        return self.flow.log_prob(x)


def dense_log_prob(weights: list[Tensor], biases: list[Tensor], x: Tensor) -> Tensor:
    """Exact log p(x) of the dense flow with these (differentiable) weights and biases."""
    flow = _LogProb(DenseFlow(x.shape[1], len(weights)).to(x.dtype))
    params = {f"flow.weights.{i}": w for i, w in enumerate(weights)}
    params |= {f"flow.biases.{i}": b for i, b in enumerate(biases)}
    return functional_call(flow, params, (x,))


def build(recon_weight: float = 1.0) -> SelfNormalizingFlow:
    spec = RunSpec(DIM, LAYERS, dtype=torch.float64, seed=1, hyper={"recon_weight": recon_weight})
    flow = METHODS["snf"].build(spec)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # off the orthogonal initialization, then R exactly W⁻¹
        for w, b, r in zip(flow.weights, flow.biases, flow.inverses, strict=True):
            w.add_(0.3 * torch.randn(w.shape, generator=generator, dtype=w.dtype))
            b.add_(0.3 * torch.randn(b.shape, generator=generator, dtype=b.dtype))
            r.copy_(torch.linalg.inv(w))
    return flow


def data(batch: int = 9) -> Tensor:
    generator = torch.Generator().manual_seed(2)
    return 1.5 * torch.randn(batch, DIM, generator=generator, dtype=torch.float64) + 0.3


def snf_gradients(flow: SelfNormalizingFlow, x: Tensor) -> dict[str, Tensor]:
    flow.zero_grad(set_to_none=True)
    flow.loss(x).backward()
    return {name: p.grad for name, p in flow.named_parameters() if p.grad is not None}


def perturb_inverses(flow: SelfNormalizingFlow, scale: float) -> None:
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for r in flow.inverses:
            r.add_(scale * torch.randn(r.shape, generator=generator, dtype=r.dtype))


def test_exact_inverse_gives_half_the_exact_forward_and_inverse_gradients() -> None:
    flow, x = build(), data()
    got = snf_gradients(flow, x)
    weights = [w.detach().requires_grad_() for w in flow.weights]
    biases = [b.detach().requires_grad_() for b in flow.biases]
    exact = torch.autograd.grad(-dense_log_prob(weights, biases, x).mean(), weights + biases)
    # The inverse form: the same exact NLL with each W written as R⁻¹, differentiated in R.
    inverses = [r.detach().requires_grad_() for r in flow.inverses]
    as_inverse = [torch.linalg.inv(r) for r in inverses]
    exact_r = torch.autograd.grad(-dense_log_prob(as_inverse, biases, x).mean(), inverses)
    for i in range(LAYERS):
        torch.testing.assert_close(got[f"weights.{i}"], 0.5 * exact[i])
        torch.testing.assert_close(got[f"biases.{i}"], exact[LAYERS + i])
        torch.testing.assert_close(got[f"inverses.{i}"], 0.5 * exact_r[i])


def test_half_gradient_is_not_the_same_as_the_full_gradient() -> None:
    """Guards the test above: the surrogate is not trivially equal for any R."""
    flow, x = build(), data()
    perturb_inverses(flow, 0.2)
    got = snf_gradients(flow, x)
    weights = [w.detach().requires_grad_() for w in flow.weights]
    biases = [b.detach() for b in flow.biases]
    exact = torch.autograd.grad(-dense_log_prob(weights, biases, x).mean(), weights)
    assert not torch.allclose(got["weights.0"], 0.5 * exact[0])


def layer_inputs(flow: SelfNormalizingFlow, x: Tensor) -> list[Tensor]:
    inputs, h = [], x
    for w, b in zip(flow.weights, flow.biases, strict=True):
        inputs.append(h.detach())
        h = smooth_leaky_relu(h @ w.T + b, flow.alpha)
    return inputs


def test_reconstruction_gradient_is_autograd_of_the_reconstruction_loss() -> None:
    flow, x = build(recon_weight=0.0), data()
    perturb_inverses(flow, 0.2)
    without = snf_gradients(flow, x)
    flow.recon_weight = 2.5
    with_recon = snf_gradients(flow, x)
    recon = sum(
        (h - h @ w.T @ r.T).square().sum(-1).mean()
        for h, w, r in zip(layer_inputs(flow, x), flow.weights, flow.inverses, strict=True)
    )
    params = dict(flow.named_parameters())
    want = torch.autograd.grad(2.5 * recon, list(params.values()), allow_unused=True)
    for (name, _), expected in zip(params.items(), want, strict=True):
        expected = torch.zeros_like(params[name]) if expected is None else expected
        torch.testing.assert_close(with_recon[name] - without[name], expected)
    assert torch.linalg.norm(with_recon["inverses.0"] - without["inverses.0"]) > 1e-3


def inverse_error(flow: SelfNormalizingFlow) -> float:
    eye = torch.eye(DIM, dtype=torch.float64)
    pairs = zip(flow.weights, flow.inverses, strict=True)
    return sum(float(torch.linalg.norm(r.detach() @ w.detach() - eye)) for w, r in pairs)


def train_inverses_only(recon_weight: float, steps: int = 600) -> tuple[float, float]:
    """‖R W − I‖ summed over layers before and after Adam on R alone (W and b frozen)."""
    flow, x = build(recon_weight), data(batch=64)
    perturb_inverses(flow, 0.3)
    for p in [*flow.weights, *flow.biases]:
        p.requires_grad_(False)
    before = inverse_error(flow)
    optimizer = torch.optim.Adam(flow.inverses.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        flow.loss(x).backward()
        optimizer.step()
    return before, inverse_error(flow)


def test_reconstruction_loss_trains_r_toward_w_inverse() -> None:
    before, after = train_inverses_only(recon_weight=50.0)
    assert after < 0.1 * before
    # Without the reconstruction term nothing ties R to W: it drifts away.
    before, after = train_inverses_only(recon_weight=0.0)
    assert after > before


def test_loss_value_is_data_term_plus_reconstruction() -> None:
    flow, x = build(recon_weight=2.0), data()
    perturb_inverses(flow, 0.2)
    log_det = sum(torch.linalg.slogdet(w).logabsdet for w in flow.weights)
    recon = sum(
        (h - h @ w.T @ r.T).square().sum(-1).mean()
        for h, w, r in zip(layer_inputs(flow, x), flow.weights, flow.inverses, strict=True)
    )
    want = -flow.log_prob(x).mean() + log_det + 2.0 * recon
    torch.testing.assert_close(flow.loss(x), want)


def test_backward_is_quadratic_in_dim() -> None:
    """Doubling D at fixed B multiplies the FLOPs by 4, not 8: four (B·D²) products."""
    batch = 8
    small, large = (
        backward_flops(self_normalizing_affine, batch, d, matrices=2) for d in (64, 128)
    )
    assert large / small < 4.5
    assert large <= 4 * 2 * batch * 128**2 + 8 * batch * 128
