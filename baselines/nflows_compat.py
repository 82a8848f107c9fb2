r"""Make nflows 0.14 run on torch 2.x without touching the global ``torch`` module.

nflows 0.14 calls three functions that torch 2.x removed or deprecated:

- ``torch.solve`` (removed; raises) in ``nflows.transforms.linear`` (``NaiveLinear`` inverse);
- ``torch.triangular_solve`` (warns) in ``nflows.transforms.lu`` (``LULinear`` inverse) and
  ``nflows.transforms.qr`` (``QRLinear`` inverse);
- ``torch.qr`` (warns) in ``nflows.utils.torchutils`` (``random_orthogonal``, used by
  ``QRLinear``'s and ``SVDLinear``'s initialization).

:func:`patch_nflows` rebinds the name ``torch`` inside exactly those modules to a proxy that
forwards every attribute to the real ``torch`` except these three, which it replaces by
equivalents built on ``torch.linalg``, with the old argument order and tuple returns. The real
``torch`` module, and every other module's view of it, stay as they were.
"""

import importlib
import types
from typing import Any, NamedTuple

import torch
from torch import Tensor

PATCHED_MODULES = (
    "nflows.transforms.linear",
    "nflows.transforms.lu",
    "nflows.transforms.qr",
    "nflows.utils.torchutils",
)


class _Solution(NamedTuple):
    solution: Tensor
    other: Tensor


def solve(B: Tensor, A: Tensor) -> _Solution:
    r"""``torch.solve(B, A)``: X with A X = B, and the packed LU factors of A."""
    lu, pivots = torch.linalg.lu_factor(A)
    return _Solution(torch.linalg.lu_solve(lu, pivots, B), lu)


def triangular_solve(
    b: Tensor, A: Tensor, upper: bool = True, transpose: bool = False, unitriangular: bool = False
) -> _Solution:
    r"""``torch.triangular_solve(b, A)``: X with op(A) X = b, and a copy of A."""
    matrix = A.mT if transpose else A
    upper = upper != transpose
    solution = torch.linalg.solve_triangular(matrix, b, upper=upper, unitriangular=unitriangular)
    return _Solution(solution, A.clone())


def qr(A: Tensor, some: bool = True) -> _Solution:
    r"""``torch.qr(A, some)``: the reduced (or complete) QR decomposition."""
    q, r = torch.linalg.qr(A, mode="reduced" if some else "complete")
    return _Solution(q, r)


class _TorchProxy(types.ModuleType):
    """``torch`` as nflows sees it: every attribute forwarded, three of them replaced."""

    def __init__(self) -> None:
        super().__init__("torch", "torch seen through jacobench's nflows compatibility shim")
        self.solve = solve
        self.triangular_solve = triangular_solve
        self.qr = qr

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


def patch_nflows() -> None:
    r"""Point the nflows modules that call removed/deprecated torch functions at the proxy.

    Idempotent; global ``torch`` is left untouched.
    """
    proxy = _TorchProxy()
    for name in PATCHED_MODULES:
        module = importlib.import_module(name)
        if not isinstance(module.torch, _TorchProxy):
            module.torch = proxy
