"""Geometry: mesh I/O through meshio, shape and mesh generators, morphing, transfer between
meshes."""
