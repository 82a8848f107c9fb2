"""The MAF tabular sets (POWER, GAS, HEPMASS, MINIBOONE, BSDS300) with MAF's preprocessing.

Source: the preprocessed archive of Papamakarios et al., "Masked Autoregressive Flow for Density
Estimation" (NeurIPS 2017), Zenodo record 1161203 (``data.tar.gz``, MD5 below). The archive is
downloaded once into ``<data dir>/maf/``, verified, and the members a data set needs are
extracted next to it (each atomically, with a ``.sha256`` sidecar checked on every load).

Preprocessing and splits follow MAF's ``datasets/*.py`` (re-implemented here):

- power: shuffle (NumPy RandomState(42)), drop two columns, add MAF's uniform jitter, test = last
  10 %, validation = last 10 % of the rest, standardize with train+validation statistics. D = 6.
- gas: drop Meth/Eth/Time, repeatedly drop the first column correlated > 0.98 with another,
  standardize, test = last 10 %, validation = last 10 % of the rest. D = 8.
- hepmass: signal rows (label 1) only, label dropped, test columns aligned to train by name,
  features whose smallest training value repeats more than 5 times dropped, standardized with
  train statistics, validation = last 10 % of train. D = 21.
- miniboone: the archive's cleaned array, splits as power, standardized likewise. D = 43.
- bsds300: the archive's train/validation/test patches as they are. D = 63.
"""

import hashlib
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.datasets.base import Data, DatasetError, DatasetInfo, register
from bench.datasets.download import RemoteFile, atomic_write, ensure, file_digest

ARCHIVE = RemoteFile(
    "maf/data.tar.gz",
    (
        "https://zenodo.org/records/1161203/files/data.tar.gz?download=1",
        "https://zenodo.org/record/1161203/files/data.tar.gz",
    ),
    md5="9b9c9b0375315ad270eba4ce80c093ab",
)
MEMBERS = {
    "power": ("power/data.npy",),
    "gas": ("gas/ethylene_CO.pickle",),
    "hepmass": ("hepmass/1000_train.csv", "hepmass/1000_test.csv"),
    "miniboone": ("miniboone/data.npy",),
    "bsds300": ("BSDS300/BSDS300.hdf5",),
}
DIMS = {"power": 6, "gas": 8, "hepmass": 21, "miniboone": 43, "bsds300": 63}
POWER_SEED = 42


def member_path(data_dir: Path, member: str) -> Path:
    return data_dir / "maf" / member


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _extracted(data_dir: Path, member: str) -> bool:
    path = member_path(data_dir, member)
    return path.is_file() and _sidecar(path).is_file()


def _verify_member(path: Path, name: str) -> None:
    sidecar = _sidecar(path)
    if not path.is_file() or not sidecar.is_file():
        raise DatasetError(f"{path} is missing; run `bench data fetch {name}`")
    expected = (sidecar.read_text().split() or [""])[0]
    if file_digest(path, "sha256") != expected:
        raise DatasetError(
            f"cached file {path} fails its SHA256 checksum (truncated or corrupt): delete it "
            f"and run `bench data fetch {name}`"
        )


def _extract(archive: Path, members: list[str], data_dir: Path) -> None:
    """Stream the members out of the archive, each to a temporary name, then renamed."""
    wanted = {f"data/{member}": member for member in members}
    found = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                name = info.name.removeprefix("./")
                if name not in wanted or not info.isfile():
                    continue
                dest = member_path(data_dir, wanted[name])
                source = tar.extractfile(info)
                digest = hashlib.sha256()
                with atomic_write(dest) as sink:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        sink.write(chunk)
                with atomic_write(_sidecar(dest)) as sink:
                    sink.write(f"{digest.hexdigest()}  {dest.name}\n".encode())
                found.add(name)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DatasetError(
            f"cannot read the archive {archive} ({error}): delete it and fetch it again"
        ) from None
    missing = sorted(set(wanted) - found)
    if missing:
        raise DatasetError(f"archive {archive} lacks {', '.join(missing)}: delete it and refetch")


def fetcher(name: str) -> Callable[[Path], None]:
    def fetch(data_dir: Path) -> None:
        members = MEMBERS[name]
        missing = [m for m in members if not _extracted(data_dir, m)]
        if missing:
            _extract(ensure(ARCHIVE, data_dir, name), missing, data_dir)
        for member in members:
            _verify_member(member_path(data_dir, member), name)

    return fetch


def cached_check(name: str) -> Callable[[Path], bool]:
    return lambda data_dir: all(_extracted(data_dir, m) for m in MEMBERS[name])


# ------------------------------------------------------------------------- preprocessing


def split_tail(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """test = last 10 %, validation = last 10 % of the rest (MAF's split)."""
    n_test = int(0.1 * len(data))
    rest, test = data[: len(data) - n_test], data[len(data) - n_test :]
    n_valid = int(0.1 * len(rest))
    return rest[: len(rest) - n_valid], rest[len(rest) - n_valid :], test


def standardize_by_train_valid(splits):
    """Standardize with the mean and (population) std of train + validation."""
    train, valid, test = splits
    both = np.vstack((train, valid))
    mean, std = both.mean(axis=0), both.std(axis=0)
    return tuple((part - mean) / std for part in (train, valid, test))


def preprocess_power(raw: np.ndarray) -> tuple[np.ndarray, ...]:
    rng = np.random.RandomState(POWER_SEED)
    data = np.array(raw, dtype=np.float64)
    rng.shuffle(data)
    data = np.delete(data, [1, 3], axis=1)  # global reactive power and global intensity
    n = len(data)
    voltage = 0.01 * rng.rand(n, 1)  # drawn in MAF's order, so the jitter is MAF's
    active = 0.001 * rng.rand(n, 1)
    sub_metering = rng.rand(n, 3)
    data = data + np.hstack((active, voltage, sub_metering, np.zeros((n, 1))))
    return standardize_by_train_valid(split_tail(data))


def preprocess_gas(frame) -> tuple[np.ndarray, ...]:
    frame = frame.drop(columns=["Meth", "Eth", "Time"])
    while True:
        correlated = (frame.corr() > 0.98).to_numpy().sum(axis=1)
        if not np.any(correlated > 1):
            break
        frame = frame.drop(columns=frame.columns[np.flatnonzero(correlated > 1)[0]])
    frame = (frame - frame.mean()) / frame.std()
    return split_tail(frame.to_numpy(dtype=np.float64))


def _smallest_value_count(column: np.ndarray) -> int:
    return int(np.sum(column == np.min(column)))


def preprocess_hepmass(train_frame, test_frame) -> tuple[np.ndarray, ...]:
    train_frame = train_frame[train_frame.iloc[:, 0] == 1].iloc[:, 1:]
    test_frame = test_frame[test_frame.iloc[:, 0] == 1].iloc[:, 1:]
    test_frame = test_frame.reindex(columns=train_frame.columns)  # MAF: drop test's extra column
    # MAF's rule, applied before standardizing (which keeps the count for non-constant columns
    # and would turn a constant one, e.g. mass, into NaN).
    train, test = train_frame.to_numpy(np.float64), test_frame.to_numpy(np.float64)
    keep = [i for i in range(train.shape[1]) if _smallest_value_count(train[:, i]) <= 5]
    train, test = train[:, keep], test[:, keep]
    mean, std = train.mean(axis=0), train.std(axis=0, ddof=1)
    train, test = (train - mean) / std, (test - mean) / std
    if np.isnan(test).any():
        raise DatasetError("hepmass: the test file's columns do not match the training file's")
    n_valid = int(0.1 * len(train))
    return train[: len(train) - n_valid], train[len(train) - n_valid :], test


def preprocess_miniboone(raw: np.ndarray) -> tuple[np.ndarray, ...]:
    return standardize_by_train_valid(split_tail(np.asarray(raw, dtype=np.float64)))


def _read(path: Path, reader: Callable, name: str):
    try:
        return reader(path)
    except DatasetError:
        raise
    except Exception as error:
        raise DatasetError(
            f"cannot parse {path} ({' '.join(str(error).split())[:120]}): delete it and run "
            f"`bench data fetch {name}`"
        ) from None


def _read_splits(name: str, paths: list[Path]) -> tuple[np.ndarray, ...]:
    import pandas as pd

    if name == "power":
        return preprocess_power(_read(paths[0], np.load, name))
    if name == "gas":
        return preprocess_gas(_read(paths[0], pd.read_pickle, name))
    if name == "hepmass":
        frames = [_read(p, lambda p: pd.read_csv(p, index_col=False), name) for p in paths]
        return preprocess_hepmass(*frames)
    if name == "miniboone":
        return preprocess_miniboone(_read(paths[0], np.load, name))
    return _read(paths[0], _read_bsds300, name)


def _read_bsds300(path: Path) -> tuple[np.ndarray, ...]:
    try:
        import h5py
    except ImportError:
        raise DatasetError("bsds300 needs h5py: pip install h5py") from None
    with h5py.File(path, "r") as f:
        return tuple(np.asarray(f[key]) for key in ("train", "validation", "test"))


def loader(name: str) -> Callable[[int, Path], Data]:
    def load(dim: int, data_dir: Path) -> Data:
        paths = [member_path(data_dir, member) for member in MEMBERS[name]]
        for path in paths:
            _verify_member(path, name)
        train, valid, test = _read_splits(name, paths)
        if train.ndim != 2 or train.shape[1] != DIMS[name]:
            raise DatasetError(
                f"{paths[0]} gives data of shape {train.shape}, expected D = {DIMS[name]}: "
                f"delete it and run `bench data fetch {name}`"
            )
        tensors = [
            torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
            for a in (train, valid, test)
        ]
        return Data(name=name, train=tensors[0], valid=tensors[1], test=tensors[2])

    return load


SUMMARIES = {
    "power": "UCI household power consumption (MAF preprocessing)",
    "gas": "UCI gas sensors, ethylene + CO (MAF preprocessing)",
    "hepmass": "UCI HEPMASS signal events (MAF preprocessing)",
    "miniboone": "UCI MiniBooNE particle identification (MAF preprocessing)",
    "bsds300": "BSDS300 8×8 image patches, last pixel dropped (MAF preprocessing)",
}

for _name in MEMBERS:
    register(
        DatasetInfo(
            name=_name,
            summary=SUMMARIES[_name],
            dim=DIMS[_name],
            splits="MAF's train / validation / test",
            seed=POWER_SEED if _name == "power" else 0,
            truth=False,
            load=loader(_name),
            fetch=fetcher(_name),
            cached=cached_check(_name),
        )
    )
