"""95% intervals of proportions, shared by the analyses that give their own and the tables that add them."""
import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(share, n) -> tuple[np.ndarray, np.ndarray]:
    """The 95% Wilson score interval of a proportion `share` of `n` items (arrays alike); NaN where n is 0 or the
    share is missing. For a share in which ties count half, the interval treats it as a proportion of n."""
    share, n = np.asarray(share, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (share + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 / (1 + Z95**2 / n) * np.sqrt(share * (1 - share) / n + Z95**2 / (4 * n**2))
    valid = (n > 0) & np.isfinite(share)
    # The interval holds the share; min/max only undo rounding at 0 and 1.
    low, high = np.minimum(np.clip(centre - half, 0, 1), share), np.maximum(np.clip(centre + half, 0, 1), share)
    return np.where(valid, low, np.nan), np.where(valid, high, np.nan)
