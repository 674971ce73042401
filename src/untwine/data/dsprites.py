"""dsprites (in progress)."""
