"""manifolds (in progress)."""
