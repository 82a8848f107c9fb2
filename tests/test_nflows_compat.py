"""The nflows shim: the transforms that call removed or deprecated torch functions run with
warnings as errors and agree with the dense computation; global torch is left as it was."""

import importlib
import warnings
from functools import partial

import pytest
import torch
from nflows.transforms import LULinear, NaiveLinear, QRLinear
from nflows.utils import torchutils

from baselines import nflows_compat

DIM = 6


@pytest.fixture(autouse=True)
def _patched_and_strict():
    nflows_compat.patch_nflows()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _inputs() -> torch.Tensor:
    return torch.randn(7, DIM, dtype=torch.float64)


def _perturbed(transform: torch.nn.Module) -> torch.nn.Module:
    transform = transform.to(torch.float64)
    with torch.no_grad():
        for p in transform.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return transform


@pytest.mark.parametrize("make", [LULinear, partial(QRLinear, num_householder=DIM), NaiveLinear])
def test_linear_transforms_invert_and_match_slogdet(make) -> None:
    transform = _perturbed(make(DIM))
    x = _inputs()
    y, log_det = transform(x)
    x_back, inverse_log_det = transform.inverse(y)
    torch.testing.assert_close(x_back, x)
    weight = transform.weight()
    torch.testing.assert_close(y, x @ weight.T + transform.bias)
    torch.testing.assert_close(log_det, torch.linalg.slogdet(weight).logabsdet.expand(7))
    torch.testing.assert_close(inverse_log_det, -log_det)


# nflows builds the identity for these in the default dtype, so they run in float32.
@pytest.mark.parametrize("make", [LULinear, NaiveLinear])
def test_weight_inverse(make) -> None:
    transform = _perturbed(make(DIM)).float()
    with torch.no_grad():
        product = transform.weight_inverse() @ transform.weight()
    torch.testing.assert_close(product, torch.eye(DIM), atol=1e-4, rtol=0)


def test_naive_linear_inverse_and_log_det_together() -> None:
    transform = _perturbed(NaiveLinear(DIM)).float()
    weight = transform.weight().detach()
    with torch.no_grad():
        weight_inverse, log_det = transform.weight_inverse_and_logabsdet()
    torch.testing.assert_close(weight_inverse @ weight, torch.eye(DIM), atol=1e-4, rtol=0)
    torch.testing.assert_close(log_det, torch.linalg.slogdet(weight).logabsdet)


def test_random_orthogonal_is_orthogonal() -> None:
    q = torchutils.random_orthogonal(DIM)
    torch.testing.assert_close(q @ q.T, torch.eye(DIM), atol=1e-5, rtol=0)


def test_triangular_solve_transpose_flag() -> None:
    upper = torch.triu(torch.rand(DIM, DIM, dtype=torch.float64)) + torch.eye(DIM)
    b = torch.randn(DIM, 2, dtype=torch.float64)
    solution, _ = nflows_compat.triangular_solve(b, upper, upper=True, transpose=True)
    torch.testing.assert_close(upper.T @ solution, b)


def test_global_torch_is_untouched() -> None:
    import nflows.transforms.linear as nflows_linear

    assert nflows_linear.torch is not torch
    assert torch.triangular_solve is not nflows_compat.triangular_solve
    assert torch.qr is not nflows_compat.qr
    assert torch.solve is not nflows_compat.solve
    with pytest.raises(RuntimeError):
        torch.solve(torch.ones(2, 1), torch.eye(2))
    with pytest.raises(UserWarning):
        torch.qr(torch.eye(2))


@pytest.mark.parametrize("module_name", nflows_compat.PATCHED_MODULES)
def test_patched_modules_resolve_to_the_shim(module_name: str) -> None:
    """torch warns once per process, so also check what each nflows module calls directly."""
    module = importlib.import_module(module_name)
    assert module.torch.triangular_solve is nflows_compat.triangular_solve
    assert module.torch.solve is nflows_compat.solve
    assert module.torch.qr is nflows_compat.qr
    assert module.torch.linalg is torch.linalg
