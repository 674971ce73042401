"""cars3d (in progress)."""
