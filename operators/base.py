"""Common base for learned operators: constructor arguments recorded for safe checkpoints.

Every operator in this package is an :class:`OperatorModel`. Its constructor takes keyword
arguments only; the resolved arguments (defaults included, so that a checkpoint does not depend on
the defaults of a later version) are kept in ``model.config`` as plain JSON values. A checkpoint is
``{"class": name, "config": json, "state_dict": tensors}`` and is loaded with
``torch.load(..., weights_only=True)``: nothing pickled is ever executed.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import inspect
import json
import operator
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

_REGISTRY: dict[str, type[OperatorModel]] = {}


def _to_json_value(value: Any) -> Any:
    """Convert tuples (and nested containers) to JSON-compatible lists; reject anything else."""
    if isinstance(value, (tuple, list)):
        return [_to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"constructor argument of type {type(value).__name__} cannot be stored in a checkpoint; "
        "operators take only JSON-compatible keyword arguments (numbers, strings, lists, dicts)"
    )


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (Python or NumPy, not a bool) >= ``minimum``;
    ``ValueError`` naming it else."""
    try:
        i = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        i = None
    if i is None or i < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return i


def check_ints(minimum: int = 1, **values: Any) -> None:
    """:func:`check_int` for every ``name=value`` keyword argument."""
    for name, value in values.items():
        check_int(value, name, minimum)


class OperatorModel(nn.Module):
    """Base class recording keyword-only constructor arguments in ``self.config``.

    Subclasses are registered by class name, so :func:`build` and :func:`load_model` can rebuild
    them from a checkpoint.
    """

    config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        existing = _REGISTRY.get(cls.__name__)
        # A same-named subclass is a tracing proxy (torch.export builds one per traced module
        # class), not a new operator: it must not replace the class checkpoints are rebuilt from.
        if existing is None or not issubclass(cls, existing):
            _REGISTRY[cls.__name__] = cls
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: OperatorModel, *args: Any, **kw: Any) -> None:
            if args:
                raise TypeError(f"{cls.__name__} takes keyword arguments only, got {len(args)} "
                                "positional argument(s)")
            bound = signature.bind(self, **kw)
            bound.apply_defaults()
            config = {k: v for k, v in bound.arguments.items() if k != "self"}
            init(self, **kw)
            # The outermost subclass runs last and so decides the recorded config.
            self.config = _to_json_value(self._resolve_config(config))

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def _resolve_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Hook for subclasses that hold other operators: complete ``config`` after ``__init__``."""
        return config

    def n_parameters(self) -> int:
        """Number of trainable scalar parameters (complex weights count twice)."""
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in self.parameters()
                   if p.requires_grad)


def registered() -> dict[str, type[OperatorModel]]:
    """Return a copy of the name -> class registry of operator models."""
    return dict(_REGISTRY)


def build(name: str, config: dict[str, Any]) -> OperatorModel:
    """Instantiate the registered operator ``name`` with keyword arguments ``config``."""
    if name not in _REGISTRY:
        importlib.import_module("operators")  # registers every operator of the package
    if name not in _REGISTRY:
        raise KeyError(f"unknown operator {name!r}; known: {sorted(_REGISTRY)}")
    cls = _REGISTRY[name]
    if not isinstance(config, dict):
        raise ValueError(f"the arguments of {name} must be a JSON object, got "
                         f"{type(config).__name__}")
    parameters = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(config) - set(parameters) - {"self"})
        if unknown:
            valid = sorted(set(parameters) - {"self"})
            raise ValueError(f"unknown arguments {unknown} for {name}; valid arguments: {valid}")
    return cls(**config)


def model_checkpoint(model: OperatorModel) -> dict[str, Any]:
    """Return a weights-only-loadable dictionary describing ``model`` completely."""
    if not isinstance(model, OperatorModel):
        raise TypeError(f"expected an OperatorModel, got {type(model).__name__}")
    return {
        "class": type(model).__name__,
        "config": json.dumps(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def model_from_checkpoint(checkpoint: dict[str, Any]) -> OperatorModel:
    """Rebuild a model from :func:`model_checkpoint`'s dictionary."""
    if not isinstance(checkpoint, dict):
        raise ValueError(f"not a model checkpoint: it holds a {type(checkpoint).__name__}, not "
                         "the dictionary save_model writes")
    missing = {"class", "config", "state_dict"} - set(checkpoint)
    if missing:
        raise ValueError(f"not a model checkpoint: missing keys {sorted(missing)}")
    model = build(checkpoint["class"], json.loads(checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model


def _umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


class LockedError(FileExistsError):
    """Another live process holds the lock of an output (see :func:`acquire_lock`)."""


#: Lock files this process holds (see :func:`acquire_lock`).
_HELD_LOCKS: set[Path] = set()


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of output ``path``: ``.NAME.lock`` beside it (a folder's too)."""
    path = Path(os.path.abspath(path))
    return path.parent / f".{path.name}.lock"


def _lock_owner(lock: Path) -> int | None:
    """The pid written in ``lock``; None if it holds none (being written, or damaged)."""
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def acquire_lock(path: str | os.PathLike) -> Path:
    """Take the lock of output ``path`` (a file or a run folder) for this process.

    The lock is the file :func:`lock_path` created with ``O_CREAT | O_EXCL`` (atomic: of two
    processes, one creates it) holding the owner's pid. A lock whose process is gone (killed,
    say) is stale and taken over; one that this process holds already is kept (re-entrant).
    Locks are removed by :func:`release_locks`, which the command line calls when a command
    ends, and at interpreter exit.

    Raises
    ------
    LockedError
        If a live process holds the lock: two writers of one output are refused, never
        interleaved.
    """
    lock = lock_path(path)
    if lock in _HELD_LOCKS and lock.exists():
        return lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _lock_owner(lock)
            if pid is None:
                try:  # just created by another process that is writing its pid: give it time
                    young = time.time() - lock.stat().st_mtime < 5
                except FileNotFoundError:
                    continue
                if young:
                    time.sleep(0.05)
                    continue
            elif pid != os.getpid() and _alive(pid):
                raise LockedError(
                    f"{path} is locked by process {pid}, another command writing it; wait for "
                    f"it to end or choose another output (if no such process runs, delete "
                    f"{lock})") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        _HELD_LOCKS.add(lock)
        return lock
    raise LockedError(f"could not take the lock {lock} of {path}; another command may be "
                      "writing it: wait for it to end or choose another output")


def held_locks() -> set[Path]:
    """The lock files this process holds."""
    return set(_HELD_LOCKS)


def release_lock(path: str | os.PathLike) -> None:
    """Remove the lock of output ``path`` if this process holds it."""
    lock = lock_path(path)
    if lock in _HELD_LOCKS and _lock_owner(lock) == os.getpid():
        lock.unlink(missing_ok=True)
    _HELD_LOCKS.discard(lock)


def release_locks() -> None:
    """Remove every lock this process holds (:func:`acquire_lock`)."""
    for lock in list(_HELD_LOCKS):
        if _lock_owner(lock) == os.getpid():
            lock.unlink(missing_ok=True)
        _HELD_LOCKS.discard(lock)


atexit.register(release_locks)


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    The rename is atomic on POSIX file systems, so readers see either the old file or the
    complete new one, never a partial write; on any error (or interruption) the temporary file
    is removed and ``path`` is left as it was. The parent folder is created if needed. The
    file gets the permissions a plain ``open(path, "w")`` would give (``0666`` minus the umask).
    The write holds the lock of ``path`` (:func:`acquire_lock`): a second process writing the
    same file meanwhile is refused with :class:`LockedError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    held = lock_path(path) in _HELD_LOCKS
    acquire_lock(path)  # a second writer of the same file is refused, not interleaved
    try:
        return _atomic_write(path, write)
    finally:
        if not held:
            release_lock(path)


def _atomic_write(path: Path, write: Callable[[str], Any]) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_model(model: OperatorModel, path: str | os.PathLike) -> None:
    """Write ``model`` (class, config, weights) to ``path`` atomically."""
    atomic_torch_save(model_checkpoint(model), path)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> OperatorModel:
    """Load a model written by :func:`save_model` without unpickling any code."""
    return model_from_checkpoint(load_checkpoint(path, map_location))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    what: str = "model checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``, with one-line errors: a file that carries
    pickled objects is refused without running them, a damaged one is named as such.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path`` (a folder in its place is named as such).
    ValueError
        If the file is damaged (truncated, not a torch archive) or carries pickled objects.
    """
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a directory, not a {what}; restore the file or "
                                "retrain the run")
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path} is damaged: not a complete torch checkpoint ({first}); "
                         "restore it or retrain the run") from None
    except Exception as err:
        # weights_only refuses any global beyond tensors with an UnpicklingError: nothing ran
        if type(err).__name__ != "UnpicklingError":
            raise
        raise ValueError(f"{path} carries pickled objects beyond tensors, which are never "
                         "loaded (torch.load(weights_only=True) refused them); it was not "
                         "written by surrogates: do not use it") from None
