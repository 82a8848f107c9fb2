r"""Injective (rectangular) flows: a d-dimensional density on a learned manifold in R^D.

The generative map g: R^d → R^D zero-pads the latent and applies a square invertible flow h;
its left inverse g† keeps the first d coordinates of h^{-1}:

.. math:: g(z) = h([z, 0]), \qquad g^\dagger(x) = h^{-1}(x)_{1:d}, \qquad
          J = \partial g / \partial z \in \mathbb{R}^{D \times d}.

For x on the manifold g(R^d) the density with respect to its volume is

.. math:: \log p(x) = \log p_Z(z) - \tfrac12 \log\det(J^\top J), \qquad z = g^\dagger(x),

and training minimizes −log p(x) + β‖x − g(g†(x))‖², so the manifold moves to the data.
``forward(x)`` is z = g†(x); ``log_prob(x)`` is the exact value above at z = g†(x) (the density
at the projection of x), with log det(JᵀJ) by Cholesky. The gradient of the log-det term is

* ``exact``: J column by column (d forward-mode products), JᵀJ, Cholesky, back-propagated:
  O(B·(d·C_g + D·d² + d³)) with C_g the cost of one pass of g.
* ``hutchinson``: ∂ log det(JᵀJ) = tr((JᵀJ)^{-1} ∂(JᵀJ)) ≈ uᵀ ∂(JᵀJ) ε with K probes ε and
  u = (JᵀJ)^{-1} ε from conjugate gradients (matvec v ↦ Jᵀ(Jv): one JVP and one VJP), u held
  fixed. The surrogate uᵀJᵀJε is computed as (Ju)·(Jε), two more JVPs, whose gradient is
  uᵀ ∂(JᵀJ) ε since ∂(JᵀJ) = ∂Jᵀ J + Jᵀ ∂J. Cost O(B·K·(n_CG + 2)·C_g), n_CG ≤ d.

References:
    Caterini et al., "Rectangular flows for manifold learning", NeurIPS 2021.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import jvp, vjp, vmap

from relgrad_impl.bases import StandardNormal
from relgrad_impl.coupling import CouplingFlow
from relgrad_impl.stochastic_trace import conjugate_gradient, probes

LOG_DET_GRADIENTS = ("exact", "hutchinson")


def default_latent_dims(dim: int) -> int:
    r"""The manifold dimension d used when none is given: max(1, ⌊D/4⌋)."""
    return max(1, dim // 4)


def jacobian_columns(g: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    r"""J = ∂g/∂z per sample, (B, D, d), as d forward-mode products J e_i."""
    basis = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
    columns = vmap(lambda e: jvp(g, (z,), (e.expand_as(z),))[1])(basis)
    return columns.permute(1, 2, 0)


def gram_log_det(jacobian: Tensor) -> Tensor:
    r"""log det(JᵀJ) per sample by Cholesky: 2 Σ_i log L_ii with JᵀJ = L Lᵀ."""
    gram = jacobian.mT @ jacobian
    return 2 * torch.linalg.cholesky(gram).diagonal(dim1=-2, dim2=-1).log().sum(-1)


def gram_log_det_surrogate(
    g: Callable[[Tensor], Tensor],
    z: Tensor,
    eps: Tensor,
    cg_tol: float = 1e-4,
    cg_max_iter: int | None = None,
) -> Tensor:
    r"""A per-sample surrogate whose gradient estimates ∂ log det(JᵀJ) from probes ε (K, B, d).

    Mean over the K probes of uᵀ(JᵀJ ε) with u = (JᵀJ)^{-1} ε solved by CG and held fixed.
    Unbiased when E[ε εᵀ] = I. The value is ≈ d, not the log-det: only its gradient means
    anything.
    """
    with torch.no_grad():
        u = _solve_gram(g, z.detach(), eps, cg_tol, cg_max_iter)
    both = vmap(lambda v: jvp(g, (z,), (v,))[1])(torch.cat([u, eps]))
    return (both[: len(eps)] * both[len(eps) :]).sum(-1).mean(0)


def _solve_gram(
    g: Callable[[Tensor], Tensor], z: Tensor, b: Tensor, tol: float, max_iter: int | None
) -> Tensor:
    r"""(JᵀJ)^{-1} b for b of shape (K, B, d), matrix-free: v ↦ Jᵀ(J v)."""
    _, pullback = vjp(g, z)

    def gram_matvec(v: Tensor) -> Tensor:
        return pullback(jvp(g, (z,), (v,))[1])[0]

    return conjugate_gradient(vmap(gram_matvec), b, tol, max_iter).solution


class RectangularFlow(nn.Module):
    r"""Injective flow g: R^d → R^D, a coupling flow h after zero-padding the latent.

    Arguments:
        dim: The data dimension D.
        latent_dims: The manifold dimension d ≤ D.
        layers: The coupling layers of h.
        hidden: The conditioners' hidden width.
        log_det_gradient: ``exact`` or ``hutchinson``.
        beta: The weight β of the reconstruction term.
        num_probes: Hutchinson probes K per sample.
        cg_tol: CG's relative residual tolerance.
        cg_max_iter: CG's iteration cap (default d).
        generator: The random generator for the initialization.
    """

    def __init__(
        self,
        dim: int,
        latent_dims: int,
        layers: int = 4,
        hidden: int = 64,
        log_det_gradient: str = "exact",
        beta: float = 1.0,
        num_probes: int = 1,
        cg_tol: float = 1e-4,
        cg_max_iter: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= latent_dims <= dim:
            raise ValueError(f"latent dims d must be in 1..D = {dim}, got {latent_dims}")
        if log_det_gradient not in LOG_DET_GRADIENTS:
            raise ValueError(f"log_det_gradient must be one of {LOG_DET_GRADIENTS}")
        self.dim, self.latent_dims = dim, latent_dims
        self.log_det_gradient, self.beta = log_det_gradient, beta
        self.num_probes, self.cg_tol, self.cg_max_iter = num_probes, cg_tol, cg_max_iter
        self.flow = CouplingFlow(dim, layers, hidden, generator)
        self.base: nn.Module = StandardNormal()  # p_Z on R^d; any module with log_prob(z)

    def decode(self, z: Tensor) -> Tensor:
        r"""x = g(z) = h([z, 0])."""
        return self.flow(nn.functional.pad(z, (0, self.dim - self.latent_dims)))

    def forward(self, x: Tensor) -> Tensor:
        r"""z = g†(x), the first d coordinates of h^{-1}(x)."""
        return self.flow.inverse(x)[..., : self.latent_dims]

    def gram_log_det(self, z: Tensor) -> Tensor:
        r"""Exact log det(JᵀJ) per sample, differentiable."""
        return gram_log_det(jacobian_columns(self.decode, z))

    def log_prob(self, x: Tensor) -> Tensor:
        r"""log p_Z(z) − ½ log det(JᵀJ) at z = g†(x)."""
        z = self(x)
        return self.base.log_prob(z) - 0.5 * self.gram_log_det(z)

    def reconstruction(self, x: Tensor, z: Tensor) -> Tensor:
        r"""‖x − g(z)‖² per sample."""
        return (x - self.decode(z)).square().sum(-1)

    def loss(self, x: Tensor) -> Tensor:
        r"""mean[−log p_Z(z) + ½ log det(JᵀJ) + β‖x − g(z)‖²], z = g†(x).

        With ``hutchinson`` the log-det term's value is left out (its gradient is the
        estimate), so the value is the loss without ½ log det(JᵀJ).
        """
        z = self(x)
        data = -self.base.log_prob(z) + self.beta * self.reconstruction(x, z)
        if self.log_det_gradient == "exact":
            return (data + 0.5 * self.gram_log_det(z)).mean()
        eps = probes((self.num_probes, *z.shape), z)
        surrogate = gram_log_det_surrogate(self.decode, z, eps, self.cg_tol, self.cg_max_iter)
        return (data + 0.5 * (surrogate - surrogate.detach())).mean()
