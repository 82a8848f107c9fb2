"""Registry entries. A new method is one new file plus one entry here."""

from baselines.lu import build_lu
from baselines.nflows_flows import build_maf, build_nsf, build_realnvp
from bench.registry import MethodInfo, RunSpec, register
from relgrad_impl import (
    DenseFlow,
    SelfNormalizingFlow,
    affine_without_log_det,
    exact_affine,
    relative_affine,
)


def _dense_flow(training_affine):
    def build(spec: RunSpec) -> DenseFlow:
        flow = DenseFlow(spec.dim, spec.layers, training_affine, generator=spec.generator())
        return flow.to(device=spec.device, dtype=spec.dtype)

    return build


register(
    MethodInfo(
        name="naive",
        summary="dense flow, log-det gradient by autograd through slogdet",
        complexity="O(L·(B·D² + D³))",
        build=_dense_flow(exact_affine),
    )
)
register(
    MethodInfo(
        name="relgrad",
        summary="dense flow, relative gradient ∇L·AᵀA, no inverse or determinant",
        complexity="O(L·B·D²)",
        build=_dense_flow(relative_affine),
    )
)
register(
    MethodInfo(
        name="floor",
        summary="dense flow with the log-det term dropped: the cost floor, not a density model",
        complexity="O(L·B·D²)",
        build=_dense_flow(affine_without_log_det),
        trains_likelihood=False,
    )
)


def _self_normalizing_flow(spec: RunSpec) -> SelfNormalizingFlow:
    recon_weight = float(spec.hyper.get("recon_weight", 1.0))
    flow = SelfNormalizingFlow(spec.dim, spec.layers, recon_weight, generator=spec.generator())
    return flow.to(device=spec.device, dtype=spec.dtype)


register(
    MethodInfo(
        name="snf",
        summary="self-normalizing dense flow (Keller et al. 2021): learned R ≈ W⁻¹ replaces W⁻ᵀ, "
        "½ forward / ½ inverse gradient, reconstruction weight λ = 1",
        complexity="O(L·B·D²)",
        build=_self_normalizing_flow,
    )
)
register(
    MethodInfo(
        name="lu",
        summary="dense flow with W = L·U·P (nflows LULinear), exact autograd, log-det O(D)",
        complexity="O(L·(B·D² + D²))",
        build=build_lu,
    )
)
register(
    MethodInfo(
        name="maf",
        summary="nflows masked affine autoregressive flow: L steps, MADE with 1 hidden layer of "
        "width D (≈ 3·L·D² params)",
        complexity="O(L·B·D²)",
        build=build_maf,
    )
)
register(
    MethodInfo(
        name="realnvp",
        summary="nflows affine coupling flow: 2L couplings, alternating masks, MLP with 1 hidden "
        "layer of width D (≈ 3·L·D² params)",
        complexity="O(L·B·D²)",
        build=build_realnvp,
    )
)
register(
    MethodInfo(
        name="nsf",
        summary="nflows rational-quadratic spline coupling flow: 2L couplings, 4 bins, MLP with "
        "1 hidden layer of width D/4 (≈ 3·L·D² params)",
        complexity="O(L·B·D²)",
        build=build_nsf,
    )
)
