"""Peak memory of a run.

CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated``) since the run started.
CPU: the growth of the process's resident-set high-water mark (Linux ``VmHWM``, reset through
``/proc/self/clear_refs``) over the run, after returning freed heap pages to the OS with
``malloc_trim`` so earlier runs' free memory is not counted as this run's. It includes the
parameters, gradients, optimizer state and the step's activations.
"""

import ctypes
import ctypes.util
import gc
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in {_STATUS}")


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    if name:
        libc = ctypes.CDLL(name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


class PeakMemory:
    """Measures the peak memory between ``start()`` and ``peak_bytes()`` on one device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.source = self._source()
        self._baseline = 0

    def _source(self) -> str:
        if self.device.type == "cuda":
            return "cuda_max_memory_allocated"
        try:
            _status_bytes("VmHWM")
            with _CLEAR_REFS.open("w") as f:
                f.write("5")
        except OSError:
            return "unavailable"
        return "cpu_rss_high_water_delta"

    def start(self) -> None:
        gc.collect()
        if self.source == "cuda_max_memory_allocated":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
        elif self.source == "cpu_rss_high_water_delta":
            _malloc_trim()
            _CLEAR_REFS.write_text("5")
            self._baseline = _status_bytes("VmRSS")

    def peak_bytes(self) -> int | None:
        if self.source == "cuda_max_memory_allocated":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) - self._baseline
        if self.source == "cpu_rss_high_water_delta":
            return _status_bytes("VmHWM") - self._baseline
        return None
