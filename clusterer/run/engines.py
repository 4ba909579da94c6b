"""Picking the engine a run names (``engine.kind``)."""

from __future__ import annotations

from ..accel.backend import Backend
from ..config import RunConfig
from .engine import LocalEngine


def make_engine(cfg: RunConfig, device: Backend) -> LocalEngine:
    """The engine ``cfg.engine.kind`` names.

    Raises:
        ConfigError: ``ray`` without the ``ray`` package, or a cluster that cannot be reached.
    """
    if cfg.engine.kind == "ray":
        from .ray_engine import RayEngine  # imports ray: only when asked for

        return RayEngine(cfg.engine, device)
    return LocalEngine(cfg.engine, device)
