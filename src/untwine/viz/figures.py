"""What every picture shares: a figure on the file-only backend, and saving it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` on the Agg backend, so pictures render without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save(fig: Any, out: str | Path, dpi: int = 100) -> Path:
    """Lay out, write (creating the folder) and close ``fig``; returns the path written."""
    import matplotlib.pyplot as plt

    out = Path(out)
    try:
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi)
    finally:
        plt.close(fig)
    return out
