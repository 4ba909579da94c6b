"""Acceleration: the device choice, CUDA kernels and their Numba twins, the hash mixer, fast sorts."""
