"""What a network family is to the transformer: the interface every family implements."""

import numpy as np


class Family:
    """A network family's arrays and its maths, as the transformer needs them.

    A family is made at ``fit`` from a network's ``validated_arrays`` and
    remade at each ``solve`` from the fitted attributes (the estimator stores
    only arrays and strings). Subclasses set the class attributes and
    implement the methods that raise here.

    Attributes
    ----------
    name : str
        Key of the family in ``rnnapprox._families.FAMILIES`` and value of
        the transformer's ``family_``.
    kernel_code : int
        The family's code in the row loop (``rnnapprox._kernels``).
    attributes : tuple of str
        The arrays and names the family is made of; the transformer stores
        each as a fitted attribute with a trailing underscore.
    state_description : str
        How the state is laid out, for messages (``"x"``, ``"(h, z, r)"``).
    piecewise_linear : bool
        Whether the dynamics are linear on each sign pattern of the state
        (relu rate networks): what ``method="active_set"`` needs.
    """

    name = None
    kernel_code = None
    attributes = ()
    state_description = "x"
    piecewise_linear = False

    def __init__(self, **arrays):
        missing = set(self.attributes) - set(arrays)
        unknown = set(arrays) - set(self.attributes)
        if missing or unknown:
            raise TypeError(f"{type(self).__name__} needs {sorted(self.attributes)}; "
                            f"missing {sorted(missing)}, unknown {sorted(unknown)}.")
        for name, value in arrays.items():
            setattr(self, name, value)

    @property
    def n_units(self):
        """Number of units: columns of the response."""
        return self.weights.shape[0]

    @property
    def n_state(self):
        """Size of the integrated state."""
        return self.n_units

    def drive(self, X):
        """Constant drive ``W_in u + b`` of each row, C-ordered float64."""
        return np.ascontiguousarray(X @ self.input_weights.T + self.bias, dtype=np.float64)

    def time_constants(self):
        """Time constant arrays of the state's parts (for ``dt`` checks and time horizons)."""
        return [self.tau]

    def outputs(self, states):
        """The response of each state: the rates ``transform`` returns."""
        raise NotImplementedError

    def jacobian(self, state, drive):
        """Jacobian of the vector field at one state, in units of 1/time."""
        raise NotImplementedError

    #: Arithmetic the family's kernels can run in (see ``precision="mixed"``).
    dtypes = (np.float64,)

    def kernel_model(self, dt, dtype=np.float64):
        """The tuple of arrays the family's kernel pieces take (see ``rnnapprox._kernels``)."""
        raise NotImplementedError

    def fixed_point_unique(self):
        """Whether the network has one fixed point per input (then any point found is Euler's)."""
        return False

    def euler_map_radius(self, states, drives, dt, pool=None):
        """Spectral radius of the Euler map's Jacobian ``I + dt J`` at each state (or a bound).

        Below 1: the state is a stable fixed point of the Euler map with step
        ``dt``, which Euler's residual approaches by about this factor per
        step. Default: one dense eigenvalue problem per state (in the threads
        of ``pool`` where given).
        """
        eye = np.eye(self.n_state)

        def radius(i):
            jacobian = self.jacobian(states[i], drives[i])
            return np.abs(np.linalg.eigvals(eye + dt * jacobian)).max()

        rows = range(len(states))
        return np.array(list(pool.map(radius, rows) if pool is not None else map(radius, rows)),
                        dtype=float)
