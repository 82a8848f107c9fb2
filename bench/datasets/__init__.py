"""Data sets: a registry of name → dimension rule, splits, seed, truth and loader.

Importing this package registers every data set; see :mod:`bench.datasets.base` for the
contract, ``bench data list`` for what is there.
"""

# The registry lists the data sets in this import order.
from bench.datasets import synthetic, manifold, digits, mnist, uci  # noqa: F401  # isort: skip
from bench.datasets import heavy_multimodal  # noqa: F401  # isort: skip
from bench.datasets.base import (
    DATA_DIR_ENV,
    DATASETS,
    Data,
    DatasetError,
    DatasetInfo,
    bits_per_dim,
    default_data_dir,
    get_dataset,
    is_cached,
    load_dataset,
)

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "Data",
    "DatasetError",
    "DatasetInfo",
    "bits_per_dim",
    "default_data_dir",
    "get_dataset",
    "is_cached",
    "load_dataset",
]
