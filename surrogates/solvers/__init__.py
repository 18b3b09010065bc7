"""GPU-batched reference solvers in JAX, one module per physics.

Solvers compute in float64 by default. 64-bit mode is switched on only inside each solver call
(``jax.enable_x64`` as a context manager), never globally as a side effect of an import.
"""
