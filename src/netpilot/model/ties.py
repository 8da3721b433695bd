"""Ties but for rounding: values equal in exact arithmetic compare equal on every machine (a wider vector unit
sums in another order and leaves another last bit), so what is ranked or compared on them decides alike."""

from __future__ import annotations

import numpy as np

#: Decimal digits kept: far below any difference that means something (utilisation, noise units, scores), far
#: above a double's rounding error at those magnitudes.
TIE_DIGITS = 9


def tie_key(value: float) -> float:
    """``value`` to a billionth (Python's correctly rounded ``round``), to sort or compare on.

    >>> 0.1 + 0.2 == 0.3, tie_key(0.1 + 0.2) == tie_key(0.3)
    (False, True)
    """
    return round(float(value), TIE_DIGITS)


def tie_round(values: np.ndarray) -> np.ndarray:
    """Each of ``values`` to a billionth (NumPy's rounding), to rank or compare on.

    >>> tie_round(np.array([1e-17, 0.1 + 0.2])).tolist()
    [0.0, 0.3]
    """
    return np.asarray(np.round(values, TIE_DIGITS))
