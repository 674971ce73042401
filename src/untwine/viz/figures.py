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
    """Lay out, write (creating the folder, atomically) and close ``fig``; returns the path.

    The format follows the suffix (``.png`` when there is none); an unknown suffix, a folder
    or an unwritable path is a one-line ``UntwineError``.
    """
    import io

    import matplotlib.pyplot as plt

    from untwine.errors import UntwineError
    from untwine.files import atomic_write

    out = Path(out)
    kind = out.suffix[1:].lower() or "png"
    try:
        fig.tight_layout()
        if kind not in fig.canvas.get_supported_filetypes():
            raise UntwineError(
                f"cannot write {out}: unknown picture type {out.suffix!r}; use .png, .pdf or .svg"
            )
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=dpi, format=kind)
        atomic_write(out, lambda h: h.write(buffer.getvalue()))
    finally:
        plt.close(fig)
    return out
