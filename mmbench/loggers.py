"""Which built-in experiment loggers are on: ``--logger NAME`` or ``MMBENCH_LOGGERS=a,b``.

The loggers are ordinary plugins on the lifecycle hooks (``mmbench_loggers.tensorboard``,
``mmbench_loggers.mlflow``), installed with the package and idle until named here, so a run
writes no event files or tracking runs nobody asked for. ``--logger`` sets ``MMBENCH_LOGGERS`` for
the process, and so for every run a sweep starts.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable

from mmbench.errors import MMBenchError

ENV = "MMBENCH_LOGGERS"
LOGGERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
"""Logger name → (the module it needs, the ``mmbench[...]`` extra that installs it)."""


def enabled_loggers() -> tuple[str, ...]:
    """The loggers named in ``$MMBENCH_LOGGERS`` (comma-separated)."""
    return tuple(name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip())


def _needs_sqlalchemy(uri: str) -> bool:
    """A database store (MLflow 3's default is ``sqlite:///mlflow.db``) without SQLAlchemy, as
    ``mlflow-skinny`` installs it."""
    database = not uri or uri.split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql", "mysql", "mssql")
    return database and importlib.util.find_spec("sqlalchemy") is None


def enable_loggers(names: Iterable[str]) -> tuple[str, ...]:
    """Check ``names`` plus those already enabled and enable them all for this process (and the
    processes it starts); an unknown logger or a missing package is a one-line error."""
    wanted = tuple(dict.fromkeys([*enabled_loggers(), *(n.strip() for n in names if n.strip())]))
    for name in wanted:
        if name not in LOGGERS:
            raise MMBenchError(f"unknown logger '{name}' (--logger / ${ENV}); choose from {', '.join(LOGGERS)}.")
        module, extra = LOGGERS[name]
        if importlib.util.find_spec(module) is None:
            raise MMBenchError(f"the {name} logger needs the '{module}' package: pip install 'mmbench[{extra}]'.")
        if name == "mlflow" and _needs_sqlalchemy(os.environ.get("MLFLOW_TRACKING_URI", "")):
            raise MMBenchError("MLflow's local store (sqlite, its default tracking URI) needs the full mlflow package: "
                               "pip install 'mmbench[mlflow]', or set MLFLOW_TRACKING_URI to a tracking server.")
    if wanted:
        os.environ[ENV] = ",".join(wanted)
    return wanted
