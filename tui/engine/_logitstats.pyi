"""Types of the compiled statistics pass (see _logitstats.c)."""

import numpy as np
from numpy.typing import NDArray

def stats(
    logits: NDArray[np.float32], margin: float, best: NDArray[np.int32], /
) -> tuple[float, float, float, int]:
    """(peak, z, ws, n_near) of ``logits``; the top len(best) near-peak ids written into ``best``."""
