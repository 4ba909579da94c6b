"""The one place that decides whether a stage runs on the CPU or on a CUDA device.

CuPy, torch.cuda and faiss-gpu are only imported inside functions, so ``import clusterer`` works on any
machine; every failure to import or to talk to a driver reads as "no GPU".
"""

from __future__ import annotations

import enum
import functools
import logging

from ..errors import BackendUnavailable

log = logging.getLogger(__name__)


class Device(str, enum.Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Backend(str, enum.Enum):
    CPU = "cpu"
    GPU = "gpu"

    def __str__(self) -> str:
        return self.value


@functools.lru_cache(maxsize=1)
def gpu_count() -> int:
    """Number of CUDA devices visible to torch or CuPy; 0 on any import or driver failure."""
    try:
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        pass
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001
        return 0


@functools.lru_cache(maxsize=1)
def cupy_available() -> bool:
    """True when CuPy imports and sees a device."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # noqa: BLE001
        return False


def kernels_on_gpu(backend: Backend) -> bool:
    """Whether the CuPy kernels (MinHash, pair overlap) run on the GPU: on the GPU backend when CuPy works.
    A GPU that torch sees without a working CuPy (torch's CUDA build installed without the ``gpu`` extra)
    runs them on the CPU, through their Numba references, with one warning."""
    if backend is not Backend.GPU:
        return False
    if cupy_available():
        return True
    _warn_no_cupy()
    return False


@functools.lru_cache(maxsize=1)
def _warn_no_cupy() -> None:
    log.warning(
        "a CUDA device is visible but CuPy does not import or see it: the MinHash and overlap kernels run on "
        "the CPU (the 'gpu' extra installs CuPy)"
    )


@functools.lru_cache(maxsize=1)
def faiss_gpu_count() -> int:
    """GPUs FAISS can use (0 for faiss-cpu builds)."""
    try:
        import faiss

        return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except Exception:  # noqa: BLE001
        return 0


def resolve(requested: Device) -> Backend:
    """Turn the user's ``--device`` into the backend the run uses.

    ``auto`` falls back to the CPU with one log line; an explicit ``cuda`` without a visible device
    raises :class:`BackendUnavailable`.
    """
    requested = Device(requested)
    if requested is not Device.CPU and gpu_count() > 0:
        return Backend.GPU
    if requested is Device.CUDA:
        raise BackendUnavailable(
            "--device cuda was given but no CUDA device is visible; "
            "check CUDA_VISIBLE_DEVICES and the driver, or use --device cpu"
        )
    if requested is Device.AUTO:
        log.info("no CUDA device visible: running on the CPU")
    return Backend.CPU
