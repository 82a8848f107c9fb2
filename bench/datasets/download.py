"""Downloads into the cache folder: to a temporary name, verified, then renamed.

Nothing half-written is ever left under a final name: a download streams into
``<name>.<random>.part`` in the destination folder while hashing, and only a file whose checksum
matches is renamed (atomically) to its final name; on any failure, Ctrl-C included, the
temporary file is removed. A cached file that fails its checksum is reported, never used.
"""

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bench.datasets.base import DatasetError

CHUNK = 1 << 20
TIMEOUT_S = 60


@dataclass(frozen=True)
class RemoteFile:
    """A file a data set needs: its name in the cache, where to get it, and its checksum."""

    path: str  # relative to the data folder
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None

    def checksum(self) -> tuple[str, str]:
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        raise ValueError(f"{self.path}: no checksum")


def urlopen(url: str) -> BinaryIO:
    """The download transport (tests replace it)."""
    return urllib.request.urlopen(url, timeout=TIMEOUT_S)


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_write(dest: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file next to ``dest``; rename it to ``dest`` only on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def verify(path: Path, remote: RemoteFile, dataset: str) -> None:
    """Raise a one-line DatasetError if the cached file is missing or fails its checksum."""
    algorithm, expected = remote.checksum()
    if not path.is_file():
        raise DatasetError(f"{path} is missing; run `bench data fetch {dataset}`")
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise DatasetError(
            f"cached file {path} fails its {algorithm.upper()} checksum (truncated or corrupt): "
            f"delete it and run `bench data fetch {dataset}`"
        )


def _copy_hashing(source: BinaryIO, sink: BinaryIO, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        sink.write(chunk)
    return digest.hexdigest()


class _ChecksumMismatch(Exception):
    pass


def download(remote: RemoteFile, data_dir: Path, dataset: str) -> Path:
    """Download ``remote`` into ``data_dir`` (trying each URL), verify it, and return its path."""
    dest = data_dir / remote.path
    algorithm, expected = remote.checksum()
    failures = []
    for url in remote.urls:
        try:
            with atomic_write(dest) as sink, urlopen(url) as source:
                actual = _copy_hashing(source, sink, algorithm)
                if actual != expected:
                    raise _ChecksumMismatch(f"{algorithm.upper()} {actual} != {expected}")
            return dest
        except _ChecksumMismatch as error:
            failures.append(f"{url} failed its checksum ({error})")
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            failures.append(f"{url}: {' '.join(str(reason).split())}")
    raise DatasetError(
        f"could not download {dest.name} for '{dataset}' ({'; '.join(failures)}); "
        f"check the network, or put the file at {dest} ({algorithm} {expected})"
    )


def ensure(remote: RemoteFile, data_dir: Path, dataset: str) -> Path:
    """The verified cached file, downloading it first if it is not there."""
    path = data_dir / remote.path
    if not path.exists():
        return download(remote, data_dir, dataset)
    verify(path, remote, dataset)
    return path
