"""The package version and the library versions recorded beside every run and every score."""

from __future__ import annotations

import importlib.metadata
import platform

__version__ = "0.1.0"

_LIBRARIES = ("torch", "numpy", "scipy", "scikit-learn")


def versions() -> dict[str, str]:
    """Versions of untwine, Python and the libraries the numbers depend on."""
    out = {"untwine": __version__, "python": platform.python_version()}
    for dist in _LIBRARIES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
