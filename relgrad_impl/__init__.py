r"""Dense normalizing flows and ways to train their log-determinant term."""

from relgrad_impl.activations import smooth_leaky_relu, smooth_leaky_relu_log_derivative
from relgrad_impl.dense_flow import (
    DenseFlow,
    affine_without_log_det,
    exact_affine,
    standard_normal_log_prob,
)
from relgrad_impl.relative_gradient import relative_affine
from relgrad_impl.self_normalizing import SelfNormalizingFlow, self_normalizing_affine

__all__ = [
    "DenseFlow",
    "SelfNormalizingFlow",
    "affine_without_log_det",
    "exact_affine",
    "relative_affine",
    "self_normalizing_affine",
    "smooth_leaky_relu",
    "smooth_leaky_relu_log_derivative",
    "standard_normal_log_prob",
]
