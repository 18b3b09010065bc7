"""The run-folder contract every family follows.

A run folder is what ``surrogates train ...`` (or ``solve ...``) writes and what ``evaluate``,
``predict`` and ``export`` read. It holds ``run_config.json``, a JSON object with at least

- ``kind``: which family's runs module wrote it (one of :data:`KINDS`), so that the command
  line can hand the folder to that family (``surrogates.cli.FAMILIES``) without guessing;
- enough of the resolved configuration to repeat the run,

plus the family's own files (weights as ``model.pt`` / safetensors-free torch state dicts read
with ``weights_only=True``, ``history.json``, ...). :func:`start_run` creates the folder and
writes the configuration; :func:`read_run_config` reads it back and checks its kind.

Folders written before kinds existed (operator and closure runs of 0.x) carry no ``kind``;
:func:`read_run_config` infers it from their ``model_class``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from operators.base import acquire_lock
from surrogates import distributed
from surrogates.data.common import MAX_JSON_BYTES, write_json

RUN_CONFIG_NAME = "run_config.json"

#: Every run kind, with the family that writes it (``surrogates.cli.FAMILIES`` has one row per
#: family and lists its kinds).
KINDS = {
    "closure": "lorenz96",            # closures of Lorenz-96 (and their ensembles, fine-tunings)
    "operator": "darcy",              # FNO / MgNO on gridded fields
    "pde_rollout": "pde1d",           # autoregressive steppers on PDEBench 1D files
    "deeponet_acoustics": "acoustics",
    "climatebench": "climatebench",
    "mmgp": "airfoil",
    "pinn": "pinn",
}

#: ``model_class`` values of Lorenz-96 closure runs (kind ``"closure"``); they also mark a 0.x
#: folder without ``kind`` as one.
CLOSURE_MODEL_CLASSES = ("MNOClosure", "LocalMLPClosure", "PolynomialClosure", "NextStateFNO",
                          "ClosureEnsemble")


#: What the package writes into a run folder (names and ``fnmatch`` patterns): ``--overwrite``
#: removes these and nothing else.
PACKAGE_OUTPUTS = (
    RUN_CONFIG_NAME, "model.pt", "checkpoint.pt", "history.json", "train_config.json",
    "calibration.json", "calibration.png", "evaluation", "member-*", "member_*", "model",
    "model.json", "params.npz", "summary.json", "solution.nc", "solution.png", "gp_params.npz",
    "gp_state.pt", "pattern_scaling.npz", "internal_variance.npz", "weights_config.json",
    "closure.onnx", "closure.onnx.json", "closure.pt2", "closure.pt2.json", "closure.pt",
    "closure.pt.json", "operator.pt2", "operator.pt2.json", "unrolled", "*.png", ".*.tmp",
)


def _is_package_output(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in PACKAGE_OUTPUTS)


def prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    """Create ``run_dir`` and take its lock; a non-empty one needs ``overwrite`` or ``resume``.

    - The folder's lock (:func:`operators.base.acquire_lock`: ``.NAME.lock`` beside it, holding
      the pid) is held until the command ends: a second command writing the same run folder
      is refused while the first runs; a lock left by a killed process is taken over.
    - ``overwrite`` removes only what the package writes into run folders
      (:data:`PACKAGE_OUTPUTS`) and **refuses**, deleting nothing, when the folder holds any
      other file: a file the user put there is never lost.
    - ``resume`` keeps everything.

    Under ``torchrun`` rank 0 does it while the other ranks wait (a refusal is raised on every
    rank).

    Raises
    ------
    FileExistsError
        If the folder is a file, holds files and neither ``overwrite`` nor ``resume`` is given,
        or holds files the package did not write (with ``overwrite``).
    operators.base.LockedError
        If another live process holds the folder's lock.
    """
    run_dir = Path(run_dir)
    ctx = distributed.context()
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} is a file, not a run folder; choose another --out")
    present = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    refuse = bool(present) and not resume and not overwrite
    foreign = [name for name in present if not _is_package_output(name)]
    ctx.barrier()  # every rank has looked before rank 0 touches anything
    if refuse:
        raise FileExistsError(f"run folder {run_dir} exists and is not empty; pass "
                              "--overwrite to replace it or --resume to continue it")
    if overwrite and not resume and foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise FileExistsError(f"run folder {run_dir} holds files that surrogates did not write "
                              f"({shown}); --overwrite replaces only a run's own files: move "
                              "them out or choose another --out")
    if ctx.is_main:
        acquire_lock(run_dir)
        if present and not resume:
            for name in present:
                path = run_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)
    ctx.barrier()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; known kinds: {sorted(KINDS)}")


def write_run_config(run_dir: str | os.PathLike, kind: str, run_config: dict[str, Any]) -> Path:
    """Write ``run_config.json`` (atomically) with ``kind`` first; returns its path."""
    _check_kind(kind)
    path = Path(run_dir) / RUN_CONFIG_NAME
    if distributed.context().is_main:
        write_json({"kind": kind, **{k: v for k, v in run_config.items() if k != "kind"}}, path)
    return path


def start_run(run_dir: str | os.PathLike, kind: str, run_config: dict[str, Any], *,
              overwrite: bool, resume: bool = False,
              fixed: tuple[str, ...] = ("model_config", "data")) -> Path:
    """Prepare ``run_dir`` (:func:`prepare_run_dir`) and write its ``run_config.json``.

    When resuming, the saved configuration's ``fixed`` entries must equal ``run_config``'s (the
    model and the data cannot change under a checkpoint); the training settings may.

    Raises
    ------
    FileExistsError
        If the folder holds files and neither ``overwrite`` nor ``resume`` is given.
    ValueError
        When resuming with another kind, model or data.
    """
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite, resume)
    config_path = run_dir / RUN_CONFIG_NAME
    if resume and config_path.exists():
        saved = read_run_config(run_dir, kinds=(kind,))
        for key in fixed:
            if saved.get(key) != run_config.get(key):
                raise ValueError(f"cannot resume {run_dir}: its {key} was {saved.get(key)}, now "
                                 f"{run_config.get(key)}; start a new run folder instead")
    write_run_config(run_dir, kind, run_config)
    return run_dir


def read_run_config(run_dir: str | os.PathLike,
                    kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``run_config.json`` of a run folder, with its ``kind`` (inferred for 0.x folders).

    Parameters
    ----------
    run_dir : path-like
    kinds : tuple of str, optional
        The kinds the caller can handle; another kind raises a ValueError that names the
        family whose commands read it.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` is not a folder or has no ``run_config.json``.
    ValueError
        If the file is not a JSON object, or its kind is unknown or not in ``kinds``.
    """
    run_dir = Path(run_dir)
    path = run_dir / RUN_CONFIG_NAME
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no such directory)")
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: {RUN_CONFIG_NAME} is missing")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"{path} is too large to be a run configuration "
                         f"({path.stat().st_size / 2**20:.0f} MiB > {MAX_JSON_BYTES // 2**20} "
                         "MiB); the run folder is damaged or not written by surrogates")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); the run folder is damaged") from err
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    if "kind" not in config:
        if "model_class" not in config:
            raise ValueError(f"{path} names neither a kind nor a model class")
        config["kind"] = ("closure" if config["model_class"] in CLOSURE_MODEL_CLASSES
                          else "operator")
    kind = config["kind"]
    if kind not in KINDS:
        raise ValueError(f"{run_dir} has the unknown run kind {kind!r}; known kinds: "
                         f"{sorted(KINDS)}")
    if kinds is not None and kind not in kinds:
        wanted = " or ".join(sorted({KINDS[k] for k in kinds}))
        raise ValueError(f"{run_dir} is a {KINDS[kind]} run (kind {kind!r}), not a {wanted} "
                         f"run; use the {KINDS[kind]} commands on it")
    return config


# ------------------------------------------------------------------------- ensemble members
def member_names(n_members: int) -> list[str]:
    """Subfolder names ``member-0 .. member-(M-1)`` of a deep ensemble of ``n_members >= 2``."""
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 2:
        raise ValueError(f"an ensemble needs n_members >= 2, got {n_members!r}")
    return [f"member-{m}" for m in range(n_members)]


def train_members(run_dir: str | os.PathLike, names: list[str], train_config, resume: bool,
                  train_member: Callable[..., Any]) -> list[Any]:
    """Train the members of a deep ensemble (Lakshminarayanan et al. 2017) one after another.

    Member ``m`` is the ordinary run folder ``run_dir/names[m]``, trained by
    ``train_member(member_dir, member_train_config, member_resume)`` with the seed
    ``train_config.seed + m`` (weights and batches); with ``resume`` members that have a
    checkpoint continue from it and the others start from scratch. Returns their results.
    """
    import dataclasses

    from surrogates.training import CHECKPOINT_NAME

    run_dir = Path(run_dir)
    return [train_member(run_dir / name,
                         dataclasses.replace(train_config, seed=train_config.seed + m),
                         resume and (run_dir / name / CHECKPOINT_NAME).is_file())
            for m, name in enumerate(names)]
