"""shapes3d (in progress)."""
