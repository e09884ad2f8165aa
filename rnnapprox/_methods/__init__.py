"""Solver methods: one class per method behind one interface (``SolverMethod``).

``METHODS`` maps the transformer's ``method`` parameter to the class; a new
method is a module here, its kernel pieces in ``rnnapprox._kernels`` and an entry
in ``METHODS``.
"""

from ._base import Settings, SolverMethod
from .active_set import ActiveSet, DeprecatedNewton
from .anderson import Anderson
from .euler import Euler

METHODS = {"euler": Euler, "anderson": Anderson, "active_set": ActiveSet, "newton": DeprecatedNewton}

__all__ = ["METHODS", "ActiveSet", "Anderson", "Euler", "Settings", "SolverMethod"]
