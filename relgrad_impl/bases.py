r"""Base distributions p_Z for any flow z = g(x): log p(x) = log p_Z(z) + log|det ∂g/∂x|.

Every base here is a product of D one-dimensional marginals, that is an independence copula
with the given marginals (Laszkiewicz et al. 2021): the copula density is 1, so

.. math:: \log p_Z(z) = \sum_i \log f_i(z_i).

- :class:`StandardNormal`: f_i = N(0, 1), the default of every method.
- :class:`Laplace`: f_i = Laplace(0, 1), density ½ e^{−|z|} (variance 2).
- :class:`StudentT`: f_i = t_ν, the standard Student-t with ν > 0 degrees of freedom,

  .. math:: \log t_\nu(z) = \log\Gamma(\tfrac{\nu+1}{2}) - \log\Gamma(\tfrac{\nu}{2})
            - \tfrac12 \log(\nu\pi) - \tfrac{\nu+1}{2} \log(1 + z^2/\nu),

  with one ν shared by all dimensions (``dim=None``) or one ν_i per dimension (the
  tail-adaptive copula of Laszkiewicz et al.), fixed or learned. A learned ν is
  parameterized as ν = exp(θ) and takes the plain gradient of the loss.

Each base is an ``nn.Module`` (so learned parameters reach the optimizer with the flow's)
with ``log_prob(z)`` summed over the last dimension and ``sample(n, dim)``.

References:
    Laszkiewicz, Lederer & Fischer, "Copula-based normalizing flows", ICML INNF+ workshop 2021.
    Jaini et al., "Tails of Lipschitz triangular flows", ICML 2020.
"""

import math

import torch
from torch import Tensor, nn


def standard_normal_log_prob(z: Tensor) -> Tensor:
    r"""Σ_i log N(z_i; 0, 1), summed over the last dimension."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * math.log(2 * math.pi))


class StandardNormal(nn.Module):
    r"""N(0, I): no parameters."""

    def log_prob(self, z: Tensor) -> Tensor:
        return standard_normal_log_prob(z)

    def sample(self, n: int, dim: int) -> Tensor:
        return torch.randn(n, dim)


class Laplace(nn.Module):
    r"""Σ_i log ½ e^{−|z_i|}: standard Laplace marginals (scale 1)."""

    def log_prob(self, z: Tensor) -> Tensor:
        return -(z.abs() + math.log(2)).sum(-1)

    def sample(self, n: int, dim: int) -> Tensor:
        return torch.distributions.Laplace(0.0, 1.0).sample((n, dim))


class StudentT(nn.Module):
    r"""Σ_i log t_{ν_i}(z_i) with ν shared (``dim=None``) or per dimension.

    Arguments:
        df: The (initial) degrees of freedom ν > 0.
        learn: Whether ν is trained with the flow.
        dim: None for one ν shared by every dimension, else the number of marginals D.
        dtype: The dtype of ν (default torch's).
    """

    def __init__(
        self,
        df: float,
        learn: bool = False,
        dim: int | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not df > 0:
            raise ValueError(f"Student-t degrees of freedom must be positive, got {df}")
        log_df = torch.full(() if dim is None else (dim,), math.log(df), dtype=dtype)
        if learn:
            self.log_df = nn.Parameter(log_df)
        else:
            self.register_buffer("log_df", log_df)

    @property
    def df(self) -> Tensor:
        return self.log_df.exp()

    def log_prob(self, z: Tensor) -> Tensor:
        df = self.df
        half = 0.5 * (df + 1)
        normalizer = torch.lgamma(half) - torch.lgamma(0.5 * df) - 0.5 * torch.log(math.pi * df)
        return (normalizer - half * torch.log1p(z.square() / df)).sum(-1)

    def sample(self, n: int, dim: int) -> Tensor:
        df = self.df.detach().expand(dim)
        return torch.distributions.StudentT(df).sample((n,))
