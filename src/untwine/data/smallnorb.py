"""smallnorb (in progress)."""
