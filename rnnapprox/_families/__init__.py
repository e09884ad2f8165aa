"""Network families: one module per family, one object per family behind one interface.

``FAMILIES`` maps the ``family`` name a network's ``validated_arrays`` reports
to the family class; a new family is a module here (its class), its kernel
pieces in ``rnnapprox._kernels`` and an entry in ``FAMILIES``.
"""

from ._base import Family
from .gated import GatedFamily
from .gru import GRUFamily
from .rate import RateFamily

FAMILIES = {family.name: family for family in (RateFamily, GatedFamily, GRUFamily)}

#: Every fitted attribute a family may set, so a refit removes the others'.
ALL_ATTRIBUTES = tuple(sorted({name for family in FAMILIES.values() for name in family.attributes}))


def get_family(name):
    """The family class registered as ``name``; a ``ValueError`` naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"network family must be one of {tuple(FAMILIES)}; got {name!r}.")
    return FAMILIES[name]


__all__ = ["ALL_ATTRIBUTES", "FAMILIES", "Family", "GatedFamily", "GRUFamily", "RateFamily", "get_family"]
