"""Registry entries. A new method is one new file plus one entry here."""

from bench.registry import MethodInfo, RunSpec, register
from relgrad_impl import DenseFlow, affine_without_log_det, exact_affine, relative_affine


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
