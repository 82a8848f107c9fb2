"""Data sets: exact truths of the synthetic sets, and the download / parse / preprocess code of
MNIST and the MAF archive on small files written here in the real formats (IDX, the archive's
layout). Downloads go through file:// URLs or a failing transport; nothing touches the network."""

import gzip
import hashlib
import io
import math
import struct
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.autograd.functional import jacobian

from bench.datasets import DATASETS, DatasetError, download, get_dataset, load_dataset, mnist, uci
from bench.datasets.download import RemoteFile
from bench.datasets.synthetic import (
    GAUSSIAN_SEED,
    N_TEST,
    N_TRAIN,
    Teacher,
    _generator,
    gaussian_entropy,
    gaussian_parameters,
    laplace_log_prob,
    sample_teacher,
)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ registry


def test_registry_has_the_data_sets_with_their_dimension_rules() -> None:
    expected = {"gaussian": None, "teacher": None, "digits": 64, "mnist": 784, "power": 6}
    expected |= {"gas": 8, "hepmass": 21, "miniboone": 43, "bsds300": 63}
    assert {name: DATASETS[name].dim for name in expected} == expected
    with pytest.raises(DatasetError, match="has D = 64"):
        get_dataset("digits").check_dim(32)
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        load_dataset("nope", 8)


# ------------------------------------------------------------------------------ synthetic


def test_gaussian_true_log_prob_is_the_exact_density_and_its_mean_the_entropy() -> None:
    dim = 6
    data = load_dataset("gaussian", dim)
    assert data.train.shape == (N_TRAIN, dim) and data.test.shape == (N_TEST, dim)
    mean, eigenvalues, rotation = gaussian_parameters(dim, _generator(GAUSSIAN_SEED, dim))
    covariance = rotation @ torch.diag(eigenvalues) @ rotation.T
    reference = torch.distributions.MultivariateNormal(mean, covariance)
    expected = reference.log_prob(data.test.double())
    torch.testing.assert_close(data.true_log_prob_test, expected, atol=1e-4, rtol=0)
    assert data.entropy == pytest.approx(reference.entropy().item(), abs=1e-9)
    assert data.entropy == pytest.approx(gaussian_entropy(eigenvalues))
    # The test-set mean of −log p is a Monte-Carlo estimate of the entropy (std √(D/2n)).
    assert abs(data.true_nll - data.entropy) < 5 * math.sqrt(dim / 2 / N_TEST)
    # Same seed, same data.
    torch.testing.assert_close(load_dataset("gaussian", dim).test, data.test)


def test_teacher_log_prob_matches_brute_force_change_of_variables() -> None:
    dim = 5
    generator = torch.Generator().manual_seed(3)
    teacher = Teacher.random(dim, generator)
    s, x, log_prob = sample_teacher(teacher, 16, generator)

    def f(source: torch.Tensor) -> torch.Tensor:
        return teacher.forward(source)[0]

    scale = torch.tensor(1 / math.sqrt(2), dtype=torch.float64)
    laplace = torch.distributions.Laplace(torch.zeros((), dtype=torch.float64), scale)
    for i in range(len(s)):
        J = jacobian(f, s[i])
        assert J.dtype == torch.float64 and J.shape == (dim, dim)
        brute = laplace.log_prob(s[i]).sum() - torch.linalg.slogdet(J).logabsdet
        torch.testing.assert_close(log_prob[i], brute, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(f(s), x)
    torch.testing.assert_close(laplace_log_prob(s), laplace.log_prob(s).sum(-1))


def test_teacher_data_set_is_non_gaussian_with_unit_variance_sources() -> None:
    data = load_dataset("teacher", 4)
    assert data.true_log_prob_test.shape == (N_TEST,) and data.true_log_prob_test.isfinite().all()
    generator = torch.Generator().manual_seed(0)
    s, _, _ = sample_teacher(Teacher.random(3, generator), 200_000, generator)
    assert s.var(0).sub(1).abs().max() < 0.02
    kurtosis = (s**4).mean(0) / s.var(0) ** 2
    assert kurtosis.sub(6).abs().max() < 0.3  # Laplace: 6, Gaussian: 3


def test_digits_are_dequantized_standardized_and_the_scaling_jacobian_counted() -> None:
    data = load_dataset("digits", 64)
    assert data.train.shape == (1297, 64) and data.test.shape == (500, 64)
    assert data.train.double().mean(0).abs().max() < 1e-5
    log_jacobian = data.log_jacobian(data.test[:3])
    assert log_jacobian.shape == (3,) and torch.all(log_jacobian == log_jacobian[0])
    # log|det ∂x/∂v| = −Σ log σ_i with σ_i the std of the dequantized pixel v = pixel + u:
    # var v ≈ var pixel + 1/12.
    from sklearn.datasets import load_digits

    pixel_var = torch.from_numpy(load_digits().data).var(0)
    expected = -0.5 * (pixel_var + 1 / 12).log().sum().item()
    assert log_jacobian[0].item() == pytest.approx(expected, abs=1.0)


# ------------------------------------------------------------------------------- download


def test_download_is_verified_then_renamed_and_a_bad_checksum_leaves_nothing(tmp_path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload" * 1000)
    cache = tmp_path / "cache"
    good = RemoteFile("x/file.bin", (source.as_uri(),), md5=md5(source))
    assert download.ensure(good, cache, "demo").read_bytes() == source.read_bytes()
    bad = RemoteFile("x/other.bin", (source.as_uri(),), md5="0" * 32)
    with pytest.raises(DatasetError, match="failed its checksum") as error:
        download.ensure(bad, cache, "demo")
    assert "\n" not in str(error.value)
    assert files_under(cache) == ["x/file.bin"]


def test_a_second_mirror_is_tried_and_no_network_is_one_clear_error(tmp_path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc")
    missing = (tmp_path / "missing.bin").as_uri()
    remote = RemoteFile(
        "f.bin", (missing, source.as_uri()), sha256=hashlib.sha256(b"abc").hexdigest()
    )
    assert download.download(remote, tmp_path / "c1", "demo").read_bytes() == b"abc"
    offline = RemoteFile("f.bin", (missing,), md5="0" * 32)
    with pytest.raises(DatasetError, match=r"could not download f\.bin .*put the file at"):
        download.download(offline, tmp_path / "c2", "demo")
    assert files_under(tmp_path / "c2") == []


def test_an_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(4)

    monkeypatch.setattr(download, "urlopen", lambda url: Broken(b"0123456789"))
    with pytest.raises(KeyboardInterrupt):
        download.download(RemoteFile("d/f.bin", ("https://x",), md5="0" * 32), tmp_path, "demo")
    assert files_under(tmp_path) == []


# ---------------------------------------------------------------------------------- MNIST


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return header + struct.pack(f">{array.ndim}i", *array.shape) + array.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_source(tmp_path, monkeypatch) -> dict[str, np.ndarray]:
    """Small MNIST files in the IDX-gz format behind file:// URLs, with their MD5s."""
    rng = np.random.default_rng(0)
    images = {
        "train": rng.integers(0, 256, (12, 28, 28)),
        "test": rng.integers(0, 256, (4, 28, 28)),
    }
    files = {}
    for split, array in images.items():
        path = tmp_path / "source" / mnist.FILES[split].path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(idx_bytes(array)))
        files[split] = RemoteFile(mnist.FILES[split].path, (path.as_uri(),), md5=md5(path))
    monkeypatch.setattr(mnist, "FILES", files)
    return images


def test_mnist_downloads_parses_and_counts_the_logit_jacobian(tmp_path, mnist_source) -> None:
    cache = tmp_path / "cache"
    assert not get_dataset("mnist").cached(cache)
    data = load_dataset("mnist", 784, cache)
    assert get_dataset("mnist").cached(cache)
    assert files_under(cache) == sorted(f.path for f in mnist.FILES.values())
    assert data.train.shape == (10, 784) and data.valid.shape == (2, 784)
    assert data.test.shape == (4, 784)
    # Back to pixel space: v = 256·σ(x) ∈ [pixel, pixel + 1).
    pixels = torch.sigmoid(data.test.double()) * 256
    expected = torch.from_numpy(mnist_source["test"].reshape(4, 784)).double()
    assert (pixels - expected - 0.5).abs().max() <= 0.5 + 1e-3
    # The log-Jacobian is Σ log ∂x_i/∂v_i of the element-wise transform (autograd).
    v = pixels[:2].clone().requires_grad_(True)
    derivative = torch.autograd.grad(mnist.logit_transform(v).sum(), v)[0]
    expected_log_jacobian = derivative.log().sum(-1)
    actual = mnist.logit_log_jacobian(mnist.logit_transform(pixels[:2]))
    torch.testing.assert_close(actual, expected_log_jacobian, rtol=1e-6, atol=1e-4)


def test_mnist_rejects_a_bad_checksum_and_a_corrupt_cache(tmp_path, mnist_source) -> None:
    cache = tmp_path / "cache"
    good = mnist.FILES["train"]
    mnist.FILES["train"] = RemoteFile(good.path, good.urls, md5="f" * 32)
    with pytest.raises(DatasetError, match="failed its checksum"):
        load_dataset("mnist", 784, cache)
    assert not (cache / good.path).exists()
    assert all(not name.endswith(".part") for name in files_under(cache))
    mnist.FILES["train"] = good
    (cache / good.path).parent.mkdir(parents=True, exist_ok=True)
    (cache / good.path).write_bytes(b"truncated")
    with pytest.raises(DatasetError, match=f"{cache / good.path} fails its MD5 checksum"):
        load_dataset("mnist", 784, cache)


def test_idx_parser_rejects_truncated_and_foreign_files() -> None:
    raw = idx_bytes(np.zeros((2, 28, 28)))
    assert mnist.parse_idx(raw, Path("f")).shape == (2, 28, 28)
    with pytest.raises(DatasetError, match="truncated"):
        mnist.parse_idx(raw[:-1], Path("f"))
    with pytest.raises(DatasetError, match="not an IDX file"):
        mnist.parse_idx(b"PK\x03\x04rest", Path("f"))


# ----------------------------------------------------------------------------- MAF archive

N_POWER, N_GAS, N_HEP, N_MINI = 400, 300, 200, 250


def hepmass_frame(rng: np.random.Generator, n: int, extra_column: bool) -> pd.DataFrame:
    columns = {"# label": rng.integers(0, 2, n).astype(float)}
    for i in range(27):  # f0…f20 continuous; f21…f26 discrete (MAF drops them)
        columns[f"f{i}"] = rng.normal(size=n) if i < 21 else rng.integers(0, 3, n).astype(float)
    columns["mass"] = np.full(n, 1000.0)
    if extra_column:
        columns["Unnamed"] = np.zeros(n)
    return pd.DataFrame(columns)


def write_maf_archive(folder: Path) -> Path:
    """A data.tar.gz in the layout of the MAF archive, with small data in each format."""
    import h5py

    rng = np.random.default_rng(1)
    root = folder / "data"
    for sub in ("power", "gas", "hepmass", "miniboone", "BSDS300"):
        (root / sub).mkdir(parents=True)
    np.save(root / "power/data.npy", rng.normal(size=(N_POWER, 8)))
    gas = pd.DataFrame(rng.normal(size=(N_GAS, 8)), columns=[f"s{i}" for i in range(8)])
    gas["twin"] = gas["s0"] + 0.01 * rng.normal(size=N_GAS)  # correlation > 0.98 with s0
    for name in ("Meth", "Eth", "Time"):
        gas[name] = rng.normal(size=N_GAS)
    gas.to_pickle(root / "gas/ethylene_CO.pickle")
    hepmass_frame(rng, N_HEP, False).to_csv(root / "hepmass/1000_train.csv", index=False)
    hepmass_frame(rng, N_HEP, True).to_csv(root / "hepmass/1000_test.csv", index=False)
    np.save(root / "miniboone/data.npy", rng.normal(size=(N_MINI, 43)))
    with h5py.File(root / "BSDS300/BSDS300.hdf5", "w") as f:
        for key, n in (("train", 30), ("validation", 10), ("test", 20)):
            f[key] = rng.normal(size=(n, 63)).astype(np.float32)
    archive = folder / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="data")
    return archive


@pytest.fixture
def maf_archive(tmp_path_factory, monkeypatch) -> Path:
    archive = write_maf_archive(tmp_path_factory.mktemp("maf_source"))
    remote = RemoteFile(uci.ARCHIVE.path, (archive.as_uri(),), md5=md5(archive))
    monkeypatch.setattr(uci, "ARCHIVE", remote)
    return archive


@pytest.mark.parametrize(
    ("name", "dim", "sizes"),
    [
        ("power", 6, (324, 36, 40)),
        ("gas", 8, (243, 27, 30)),
        ("miniboone", 43, (203, 22, 25)),
        ("bsds300", 63, (30, 10, 20)),
    ],
)
def test_maf_sets_load_with_maf_splits_and_dims(tmp_path, maf_archive, name, dim, sizes) -> None:
    cache = tmp_path / "cache"
    data = load_dataset(name, dim, cache)
    assert (len(data.train), len(data.valid), len(data.test)) == sizes
    assert data.dim == dim and data.train.dtype == torch.float32
    if name in ("power", "miniboone"):  # standardized with train + validation statistics
        both = torch.cat([data.train, data.valid]).double()
        assert (
            both.mean(0).abs().max() < 1e-6 and both.std(0, correction=0).sub(1).abs().max() < 1e-6
        )
    assert get_dataset(name).cached(cache)
    assert not any(p.endswith(".part") for p in files_under(cache))


def test_hepmass_keeps_signal_drops_discrete_features_and_aligns_test(
    tmp_path, maf_archive
) -> None:
    data = load_dataset("hepmass", 21, tmp_path / "cache")
    train = pd.read_csv(tmp_path / "cache/maf/hepmass/1000_train.csv")
    signal = train[train["# label"] == 1][[f"f{i}" for i in range(21)]].to_numpy()
    n_valid = int(0.1 * len(signal))
    assert len(data.train) + len(data.valid) == len(signal) and len(data.valid) == n_valid
    expected = (signal - signal.mean(0)) / signal.std(0, ddof=1)
    np.testing.assert_allclose(data.train.numpy(), expected[: len(signal) - n_valid], atol=1e-5)
    assert torch.isfinite(data.test).all() and data.test.shape[1] == 21


def test_power_follows_maf_jitter_and_split(tmp_path, maf_archive) -> None:
    data = load_dataset("power", 6, tmp_path / "cache")
    source = np.load(tmp_path / "cache/maf/power/data.npy")
    rng = np.random.RandomState(42)
    shuffled = source.copy()
    rng.shuffle(shuffled)
    kept = shuffled[:, [0, 2, 4, 5, 6, 7]]
    voltage, active, meters = (
        0.01 * rng.rand(N_POWER, 1),
        0.001 * rng.rand(N_POWER, 1),
        rng.rand(N_POWER, 3),
    )
    jittered = kept + np.hstack((active, voltage, meters, np.zeros((N_POWER, 1))))
    train_valid = jittered[: N_POWER - 40]
    expected_test = (jittered[N_POWER - 40 :] - train_valid.mean(0)) / train_valid.std(0)
    np.testing.assert_allclose(data.test.numpy(), expected_test, atol=1e-5)


def test_maf_archive_with_a_bad_checksum_is_rejected_and_nothing_is_left(
    tmp_path, maf_archive, monkeypatch
) -> None:
    monkeypatch.setattr(
        uci, "ARCHIVE", RemoteFile(uci.ARCHIVE.path, uci.ARCHIVE.urls, md5="0" * 32)
    )
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"data\.tar\.gz .*failed its checksum"):
        load_dataset("power", 6, cache)
    assert files_under(cache) == []


def test_a_corrupt_extracted_member_or_archive_is_named(tmp_path, maf_archive) -> None:
    cache = tmp_path / "cache"
    load_dataset("miniboone", 43, cache)
    member = cache / "maf/miniboone/data.npy"
    member.write_bytes(member.read_bytes()[:100])
    with pytest.raises(DatasetError, match=f"{member} fails its SHA256 checksum"):
        load_dataset("miniboone", 43, cache)
    archive = cache / uci.ARCHIVE.path
    archive.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(DatasetError, match=f"{archive} fails its MD5 checksum"):
        load_dataset("gas", 8, cache)
