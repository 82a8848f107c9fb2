"""teacher-t and mixture: exact true log-densities (scipy and brute-force change of variables),
heavy tails and mixture proportions, registered with their truth."""

import math

import numpy as np
import pytest
import torch
from scipy import special, stats
from torch.autograd.functional import jacobian

from bench.datasets import DATASETS, load_dataset
from bench.datasets.heavy_multimodal import (
    MIXTURE_SEED,
    SOURCE_DF,
    TEACHER_T_SEED,
    GaussianMixture,
    unit_student_t_sources,
)
from bench.datasets.synthetic import N_TEST, N_TRAIN, Teacher, _generator

UNIT_SCALE = math.sqrt(SOURCE_DF / (SOURCE_DF - 2))


def test_both_are_registered_at_any_dimension_with_their_truth() -> None:
    for name in ("teacher-t", "mixture"):
        assert DATASETS[name].dim is None and DATASETS[name].truth


def test_student_t_sources_have_the_scaled_t_log_density_and_its_tails() -> None:
    s, log_prob = unit_student_t_sources(100_000, 2, torch.Generator().manual_seed(0))
    want = stats.t.logpdf(s.numpy() * UNIT_SCALE, SOURCE_DF) + math.log(UNIT_SCALE)
    np.testing.assert_allclose(log_prob.numpy(), want.sum(-1), rtol=1e-10)
    assert s.var(0).sub(1).abs().max() < 0.15  # unit variance (heavy tails: a loose check)
    tail = (s.abs() > 3).double().mean().item()
    assert tail == pytest.approx(2 * stats.t.sf(3 * UNIT_SCALE, SOURCE_DF), rel=0.1)
    assert tail > 5 * 2 * stats.norm.sf(3)  # far heavier than a Gaussian's


def test_teacher_t_true_log_prob_is_the_change_of_variables() -> None:
    dim = 3
    data = load_dataset("teacher-t", dim)
    generator = _generator(TEACHER_T_SEED, dim)
    teacher = Teacher.random(dim, generator)
    s, _ = unit_student_t_sources(N_TRAIN + N_TEST, dim, generator)
    s = s[N_TRAIN : N_TRAIN + 4]
    torch.testing.assert_close(teacher.forward(s)[0].float(), data.test[:4])
    for i, source in enumerate(s):
        log_det = torch.linalg.slogdet(jacobian(lambda v: teacher.forward(v)[0], source))
        log_source = stats.t.logpdf(source.numpy() * UNIT_SCALE, SOURCE_DF).sum()
        brute = log_source + dim * math.log(UNIT_SCALE) - log_det.logabsdet.item()
        assert data.true_log_prob_test[i].item() == pytest.approx(brute, rel=1e-10)


def test_mixture_log_prob_matches_scipy_and_samples_follow_the_weights() -> None:
    dim = 16  # means N(0, 4² I) are far apart: the nearest mean is the component
    mixture = GaussianMixture(dim, torch.Generator().manual_seed(1))
    x = mixture.sample(50_000, torch.Generator().manual_seed(2))
    terms = [
        math.log(w) + stats.multivariate_normal(mu.numpy(), s.item() ** 2).logpdf(x[:10].numpy())
        for w, mu, s in zip(mixture.log_weights.exp(), mixture.means, mixture.scales, strict=True)
    ]
    want = special.logsumexp(np.stack(terms), axis=0)
    np.testing.assert_allclose(mixture.log_prob(x[:10]).numpy(), want, rtol=1e-10)
    nearest = torch.cdist(x, mixture.means).argmin(-1)
    frequencies = torch.bincount(nearest, minlength=len(mixture.means)).double() / len(x)
    torch.testing.assert_close(frequencies, mixture.log_weights.exp(), atol=0.01, rtol=0)


def test_mixture_data_set_is_seeded_and_scored_by_its_own_density() -> None:
    data = load_dataset("mixture", 2)
    mixture = GaussianMixture(2, _generator(MIXTURE_SEED, 2))
    want = mixture.log_prob(data.test.double())  # the stored samples are rounded to float32
    torch.testing.assert_close(data.true_log_prob_test, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(load_dataset("mixture", 2).train, data.train)
