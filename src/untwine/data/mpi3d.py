"""mpi3d (in progress)."""
