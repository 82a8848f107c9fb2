r"""Options that apply to every registered method: the base distribution and boosting.

They travel in ``RunSpec.hyper`` (``base``: a canonical base name, ``boost``: the number of
components K, ``boost_weights``: the mixture-weight schedule) and take effect in
:func:`build_method`, which builds the registered method (K times, seeds seed … seed + K − 1,
for boosting), puts the base into each one's ``base`` module and wraps the K components in a
:class:`~bench.boosting.BoostedFlow`. Each method keeps its own loss: its base log-density
enters the data term, so relgrad, snf and floor train exactly as they do with N(0, I).

Base names (``--base``):

- ``normal`` (the default), ``laplace``;
- ``student-t[:DF|:learn]``: one ν for all dimensions, fixed at DF > 0 or learned (from ν = 5);
- ``copula[:DF0]``: independence copula with one learned Student-t marginal per dimension of z,
  ν_i starting at DF0 (default 5) — the tail-adaptive copula base.

References:
    Laszkiewicz, Lederer & Fischer, "Copula-based normalizing flows", ICML INNF+ workshop 2021.
    Giaquinto & Banerjee, "Gradient boosted normalizing flows", NeurIPS 2020.
"""

from collections.abc import Mapping
from typing import Any

from torch import nn

from bench.boosting import WEIGHT_SCHEDULES, BoostedFlow, default_steps
from bench.registry import FlowMethod, MethodInfo, RunSpec
from relgrad_impl.bases import Laplace, StandardNormal, StudentT

DEFAULT_DF = 5.0
BASE_FORMS = "normal, laplace, student-t[:DF|:learn], copula[:DF0]"


class VariantError(ValueError):
    """A --base / --boost value that cannot be used: one line, exit code 2."""


def _positive_df(text: str, option: str) -> float:
    try:
        df = float(text)
    except ValueError:
        raise VariantError(
            f"--base {option}: degrees of freedom '{text}' is not a number"
        ) from None
    if not 0 < df < float("inf"):
        raise VariantError(f"--base {option}: degrees of freedom must be positive, got {text}")
    return df


def parse_base(text: str) -> str:
    r"""The canonical base name for ``--base`` text, e.g. 'student-t:3' → 'student-t:3.0'."""
    family, _, argument = text.strip().lower().partition(":")
    if family in ("normal", "laplace") and not argument:
        return family
    if family == "student-t":
        if argument in ("", "learn"):
            return "student-t:learn"
        return f"student-t:{_positive_df(argument, text)}"
    if family == "copula":
        return f"copula:{_positive_df(argument, text) if argument else DEFAULT_DF}"
    raise VariantError(f"--base '{text}' is not one of: {BASE_FORMS}")


def make_base(name: str, dim: int) -> nn.Module:
    r"""The base module for a canonical ``name`` over z ∈ R^dim."""
    family, _, argument = name.partition(":")
    if family == "normal":
        return StandardNormal()
    if family == "laplace":
        return Laplace()
    if family == "student-t":
        learn = argument == "learn"
        return StudentT(DEFAULT_DF if learn else float(argument), learn=learn)
    return StudentT(float(argument), learn=True, dim=dim)


def parse_boost(components: int | None, weights: str) -> dict[str, Any]:
    r"""``hyper`` entries for ``--boost K`` and ``--boost-weights``."""
    if weights not in WEIGHT_SCHEDULES:
        raise VariantError(f"--boost-weights {weights}: choose {', '.join(WEIGHT_SCHEDULES)}")
    if components is None:
        return {}
    if components < 1:
        raise VariantError(f"--boost must be a positive number of components, got {components}")
    return {"boost": components, "boost_weights": weights}


def variant_columns(hyper: Mapping[str, Any]) -> dict[str, Any]:
    r"""The ``base`` and ``components`` columns of a result row."""
    return {"base": hyper.get("base", "normal"), "components": int(hyper.get("boost", 1))}


def with_base(method: FlowMethod, name: str, spec: RunSpec) -> FlowMethod:
    r"""``method`` with its base replaced by ``name`` (on the spec's device and dtype)."""
    if not isinstance(getattr(method, "base", None), nn.Module):
        raise VariantError(f"{type(method).__name__} has no `base` module to replace")
    dim = int(getattr(method, "latent_dims", spec.dim))
    method.base = make_base(name, dim).to(device=spec.device, dtype=spec.dtype)
    return method


def build_method(info: MethodInfo, spec: RunSpec, steps: int | None = None) -> FlowMethod:
    r"""Build ``info`` under ``spec``, with the base and boosting its ``hyper`` asks for.

    ``steps`` is the training budget of the whole run (all components); None for timing.
    """
    base, components = spec.hyper.get("base", "normal"), int(spec.hyper.get("boost", 1))

    def one(seed: int) -> FlowMethod:
        part = RunSpec(spec.dim, spec.layers, spec.device, spec.dtype, seed, spec.hyper)
        method = info.build(part)
        return method if base == "normal" else with_base(method, base, part)

    if components == 1:
        return one(spec.seed)
    per = None if steps is None else default_steps(steps, components)
    parts = [one(spec.seed + index) for index in range(components)]
    schedule = spec.hyper.get("boost_weights", "decreasing")
    return BoostedFlow(parts, per, schedule, seed=spec.seed).to(device=spec.device)
