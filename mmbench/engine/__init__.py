"""The training engine: methods supply a :class:`MethodModule`; the engine owns the loop.

Importing this package imports torch.
"""

from mmbench.engine.context import RunContext
from mmbench.engine.module import MethodModule

__all__ = ["MethodModule", "RunContext"]
