"""Geometry: mesh I/O through meshio, shape and mesh generators, morphing, transfer between
meshes.

* :mod:`meshes.airfoil` -- NACA 4- and 5-digit sections and the common polygon form
  (:class:`~meshes.airfoil.AirfoilShape`, Selig files);
* :mod:`meshes.cst` -- CST (Kulfan) shapes: random valid shapes and least-squares fits;
* :mod:`meshes.airfoil_mesh` -- triangular flow-domain meshes around an airfoil (Triangle), tagged
  boundaries, quality checks, atomic meshio I/O;
* :mod:`meshes.morph` (RBF), :mod:`meshes.morph_tutte`, :mod:`meshes.morph_elasticity` (with its
  POD) -- morphing a reference airfoil-domain mesh onto a target geometry;
* :mod:`meshes.transfer` -- P1 interpolation of point fields between meshes;
* :mod:`meshes.vtp` -- VTK XML PolyData surfaces;
* :mod:`meshes.voxelize` -- grid nodes inside a closed surface mesh.
"""
