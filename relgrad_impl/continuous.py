r"""Continuous normalizing flow (FFJORD family): z = x + ∫₀ᵀ f(z(t), t) dt, solved by torchdiffeq.

The instantaneous change of variables gives the log-density exactly:

.. math:: \frac{d}{dt} \log\left|\det \frac{\partial z(t)}{\partial x}\right|
          = \operatorname{tr} \frac{\partial f}{\partial z}(z(t), t), \qquad
          \log p(x) = \log \mathcal{N}(z(T)) + \int_0^T \operatorname{tr}
          \frac{\partial f}{\partial z} \, dt .

The trace is either ``exact`` (D vector-Jacobian products per evaluation of f, O(D·C_f)) or
``hutchinson``: εᵀ (∂f/∂z) ε with one probe ε per sample held fixed over the solve (one
vector-Jacobian product, O(C_f)), whose expectation is the trace. Training back-propagates
through the solver's steps; ``log_prob`` always uses the exact trace.

f is an MLP of width H with tanh activations and the time t appended to each layer's input;
its last layer starts at zero, so the flow starts as the identity.

References:
    Chen et al., "Neural ordinary differential equations", NeurIPS 2018.
    Grathwohl et al., "FFJORD: free-form continuous dynamics for scalable reversible generative
    models", ICLR 2019.
"""

from collections.abc import Callable
from itertools import pairwise

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from relgrad_impl.bases import StandardNormal
from relgrad_impl.stochastic_trace import probes

TRACES = ("exact", "hutchinson")
State = tuple[Tensor, Tensor]


def default_tolerance(dtype: torch.dtype) -> float:
    r"""The solver's rtol = atol when none is given: 1e-5 in float32 (FFJORD's), 1e-9 in float64."""
    return 1e-9 if dtype == torch.float64 else 1e-5


def exact_divergence(f_z: Tensor, z: Tensor, create_graph: bool) -> Tensor:
    r"""tr(∂f/∂z) per sample as Σ_i (e_iᵀ ∂f/∂z)_i: D vector-Jacobian products."""
    columns = []
    for i in range(z.shape[-1]):
        row = torch.autograd.grad(f_z[:, i].sum(), z, create_graph=create_graph, retain_graph=True)
        columns.append(row[0][:, i])
    return torch.stack(columns, -1).sum(-1)


def hutchinson_divergence(f_z: Tensor, z: Tensor, eps: Tensor, create_graph: bool) -> Tensor:
    r"""εᵀ (∂f/∂z) ε per sample: one vector-Jacobian product."""
    (eps_jacobian,) = torch.autograd.grad(f_z, z, eps, create_graph=create_graph)
    return (eps_jacobian * eps).sum(-1)


class VectorField(nn.Module):
    r"""f(z, t): an MLP with tanh activations, t appended to every layer's input.

    Arguments:
        dim: The dimension D.
        hidden: The hidden width H.
        layers: The number of hidden layers.
        generator: The random generator for the initialization.
    """

    def __init__(
        self, dim: int, hidden: int, layers: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        widths = [dim] + [hidden] * layers
        self.linears = nn.ModuleList(nn.Linear(w + 1, v) for w, v in pairwise(widths))
        self.out = nn.Linear(widths[-1] + 1, dim)
        with torch.no_grad():
            for linear in self.linears:
                bound = linear.in_features**-0.5
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.zero_()
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        r"""dz/dt = f(z, t)."""
        time = t.expand(*z.shape[:-1], 1)
        for linear in self.linears:
            z = torch.tanh(linear(torch.cat([z, time], -1)))
        return self.out(torch.cat([z, time], -1))


def augmented_dynamics(
    field: VectorField, trace: str, eps: Tensor | None, create_graph: bool
) -> Callable[[Tensor, State], State]:
    r"""(z, ℓ) ↦ (f(z, t), tr ∂f/∂z) with the trace estimator chosen."""

    def dynamics(t: Tensor, state: State) -> State:
        z = state[0]
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_()
            f_z = field(t, z)
            if trace == "exact":
                divergence = exact_divergence(f_z, z, create_graph)
            else:
                divergence = hutchinson_divergence(f_z, z, eps, create_graph)
        if not create_graph:
            return f_z.detach(), divergence.detach()
        return f_z, divergence

    return dynamics


class ContinuousFlow(nn.Module):
    r"""CNF x ↦ z(T) with a standard normal base.

    Arguments:
        dim: The dimension D.
        hidden: The vector field's hidden width H.
        layers: The vector field's hidden layers.
        trace: How training estimates the trace: ``exact`` or ``hutchinson``.
        time: The integration time T.
        solver: A torchdiffeq method (``dopri5`` adaptive, ``rk4`` fixed step, ...).
        tol: rtol = atol of an adaptive solver (default by dtype, see
            :func:`default_tolerance`).
        step_size: The step of a fixed-step solver.
        generator: The random generator for the initialization.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 64,
        layers: int = 2,
        trace: str = "exact",
        time: float = 1.0,
        solver: str = "dopri5",
        tol: float | None = None,
        step_size: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if trace not in TRACES:
            raise ValueError(f"trace must be one of {TRACES}, got '{trace}'")
        self.field = VectorField(dim, hidden, layers, generator)
        self.trace, self.time, self.solver = trace, time, solver
        self.tol, self.step_size = tol, step_size
        self.base: nn.Module = StandardNormal()  # p_Z; any module with log_prob(z)

    def _solve(self, func: Callable, y0: Tensor | State) -> Tensor | State:
        reference = y0[0] if isinstance(y0, tuple) else y0
        times = torch.tensor([0.0, self.time], dtype=reference.dtype, device=reference.device)
        tol = self.tol or default_tolerance(reference.dtype)
        options = None if self.step_size is None else {"step_size": self.step_size}
        solution = odeint(func, y0, times, rtol=tol, atol=tol, method=self.solver, options=options)
        return tuple(s[-1] for s in solution) if isinstance(solution, tuple) else solution[-1]

    def forward(self, x: Tensor) -> Tensor:
        r"""z = z(T) from z(0) = x."""
        return self._solve(self.field, x)

    def _log_prob(self, x: Tensor, trace: str, eps: Tensor | None = None) -> Tensor:
        dynamics = augmented_dynamics(self.field, trace, eps, torch.is_grad_enabled())
        z, log_det = self._solve(dynamics, (x, x.new_zeros(x.shape[:-1])))
        return self.base.log_prob(z) + log_det

    def log_prob(self, x: Tensor) -> Tensor:
        r"""log N(z(T)) + ∫ tr(∂f/∂z) dt with the exact trace."""
        return self._log_prob(x, "exact")

    def loss(self, x: Tensor) -> Tensor:
        r"""−mean log p(x), the trace integral as ``trace`` estimates it."""
        eps = probes(x.shape, x) if self.trace == "hutchinson" else None
        return -self._log_prob(x, self.trace, eps).mean()
