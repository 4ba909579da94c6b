"""clusterer: expose templated extraction campaigns in a day of LLM prompt logs.

In-process API (the CLI calls the same functions)::

    import clusterer
    result = clusterer.cluster(frame_or_paths, model="static")   # -> clusterer.Result (polars tables)
    result.write("out/day")                                      # what `clusterer run` writes
    labels = clusterer.assign(new_prompts, registry="registry").labels
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.19"
__all__ = ["Assignment", "Result", "RunConfig", "__version__", "assign", "cluster", "verify"]

if TYPE_CHECKING:
    from .api import Assignment, assign, cluster, verify
    from .config import RunConfig
    from .result import Result


def __getattr__(name: str) -> Any:  # imported on first use: `import clusterer` stays light (CLI start-up)
    if name in ("cluster", "assign", "verify", "Assignment"):
        from . import api

        return getattr(api, name)
    if name == "Result":
        from .result import Result

        return Result
    if name == "RunConfig":
        from .config import RunConfig

        return RunConfig
    raise AttributeError(f"module 'clusterer' has no attribute {name!r}")
