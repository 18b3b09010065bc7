"""The package's main job (``surrogates demo``): every family on a small embedded default, one
report. :mod:`.main` runs it; :mod:`.sections` holds the per-family sections."""
