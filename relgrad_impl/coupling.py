r"""Affine coupling layers: a square invertible flow whose inverse is as cheap as its forward.

Layer k keeps the coordinates with mask m_k and moves the others by an affine map conditioned
on the kept ones:

.. math:: x = m \odot u + (1 - m) \odot \big(u \, e^{s(m \odot u)} + t(m \odot u)\big),
          \qquad u = m \odot x + (1 - m) \odot \big(x - t(m \odot x)\big) e^{-s(m \odot x)},

with s = tanh(·) bounded and (s, t) from one tanh MLP of width H. Masks alternate the parity of
the coordinate index. The conditioner's last layer starts at zero, so the flow starts as the
identity. One pass costs O(B·L·D·H), either way.

References:
    Dinh et al., "Density estimation using Real NVP", ICLR 2017.
"""

import torch
from torch import Tensor, nn


def parity_mask(dim: int, layer: int) -> Tensor:
    r"""m_k[i] = 1 where i + k is even: alternate layers change alternate coordinates."""
    return ((torch.arange(dim) + layer) % 2 == 0).to(torch.get_default_dtype())


class AffineCoupling(nn.Module):
    r"""One affine coupling layer on R^D with a fixed binary mask.

    Arguments:
        mask: The kept coordinates m ∈ {0, 1}^D.
        hidden: The conditioner's hidden width H.
        generator: The random generator for the conditioner's first layer.
    """

    def __init__(self, mask: Tensor, hidden: int, generator: torch.Generator | None = None):
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask)
        self.hidden = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, 2 * dim)
        bound = dim**-0.5
        with torch.no_grad():
            self.hidden.weight.uniform_(-bound, bound, generator=generator)
            self.hidden.bias.zero_()
            self.out.weight.zero_()
            self.out.bias.zero_()

    def _scale_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        scale, shift = self.out(torch.tanh(self.hidden(kept))).chunk(2, dim=-1)
        moved = 1 - self.mask
        return torch.tanh(scale) * moved, shift * moved

    def forward(self, u: Tensor) -> Tensor:
        r"""x = m ⊙ u + (1 − m) ⊙ (u e^s + t)."""
        scale, shift = self._scale_shift(u * self.mask)
        return u * scale.exp() + shift

    def inverse(self, x: Tensor) -> Tensor:
        r"""u = m ⊙ x + (1 − m) ⊙ (x − t) e^{−s}."""
        scale, shift = self._scale_shift(x * self.mask)
        return (x - shift) * (-scale).exp()


class CouplingFlow(nn.Module):
    r"""L affine coupling layers h: R^D → R^D, from the latent side u to the data side x.

    Arguments:
        dim: The dimension D.
        layers: The number of coupling layers L.
        hidden: The conditioners' hidden width H.
        generator: The random generator for the initialization.
    """

    def __init__(
        self, dim: int, layers: int, hidden: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            AffineCoupling(parity_mask(dim, k), hidden, generator) for k in range(layers)
        )

    def forward(self, u: Tensor) -> Tensor:
        r"""x = h(u)."""
        for layer in self.layers:
            u = layer(u)
        return u

    def inverse(self, x: Tensor) -> Tensor:
        r"""u = h^{-1}(x)."""
        for layer in reversed(self.layers):
            x = layer.inverse(x)
        return x
