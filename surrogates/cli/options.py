"""Shared pieces of the ``surrogates`` command line: configuration files, options, errors.

Every family module (:mod:`surrogates.cli.lorenz96`, ...) builds its commands from these. The
rule they follow: a flag that sets a field of a configuration dataclass is made by
:func:`field_option`, which reads the default from the dataclass, so that each default is
written once (in the dataclass) and the help text cannot drift from it. Flags left out are
``None``, so that :func:`config_from` can tell them from values given.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import time
import tomllib
import types
import typing
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click

T = TypeVar("T")


# ------------------------------------------------------------------ configuration and errors
class InputError(click.ClickException):
    """A mistake in the user's input (a configuration file, a value): one line, exit code 1.

    ``option`` (``--config``, ``--dt``, ...) starts the message when given."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(f"{option}: {message}" if option else message)


def read_toml(path: str | None) -> dict[str, Any]:
    """The table of a ``--config`` TOML file (``{}`` without one), with clear errors."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as err:
        raise InputError(f"no config file at {path}", "--config") from err
    except IsADirectoryError as err:
        raise InputError(f"{path} is a directory, not a TOML file", "--config") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid TOML: {err}", "--config") from err


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (list, tuple, collections.abc.Sequence):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}s" if args else "a list"
    if hint is type(None):
        return "none"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            dict: "a table"}.get(hint, getattr(hint, "__name__", str(hint)))


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (from TOML or a flag) fits the type annotation ``hint``; annotations
    it does not understand accept anything."""
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, (str, typing.TypeVar)):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        if origin is tuple and args and Ellipsis not in args:
            return len(args) == len(value) and all(map(_matches, value, args))
        return not args or all(_matches(v, args[0]) for v in value)
    if origin in (dict, collections.abc.Mapping) or hint in (dict,):
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True


def config_from(cls: type[T], table: Mapping[str, Any], overrides: Mapping[str, Any]) -> T:
    """Build dataclass ``cls`` from a TOML table, then the flags that were given (not None).

    Unknown keys, values of the wrong type (checked against the field annotations) and values
    the dataclass refuses are one-line errors (:class:`InputError`, exit code 1).
    """
    if not isinstance(table, Mapping):
        raise InputError(f"expected a table of {cls.__name__} fields, got {table!r}", "--config")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(table) - set(fields)
    if unknown:
        raise InputError(f"unknown keys {sorted(unknown)} for {cls.__name__}; valid keys: "
                         f"{sorted(fields)}", "--config")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # annotations that do not resolve: leave the checks to the dataclass
        hints = {}
    values = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    for name, value in values.items():
        if name in hints and not _matches(value, hints[name]):
            where = "--config" if name in table and overrides.get(name) is None else None
            raise InputError(f"{cls.__name__}.{name} must be {_describe(hints[name])}, got "
                             f"{value!r}", where)
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise InputError(str(err)) from err


def kwargs_from(function: Callable, table: Any, section: str,
                skip: Iterable[str] = ()) -> dict[str, Any]:
    """A TOML table ``[section]`` checked as keyword arguments of ``function``: unknown keys and
    values of the wrong type (against its annotations) are one-line errors (:class:`InputError`).
    """
    import inspect

    if not isinstance(table, Mapping):
        raise InputError(f"[{section}] must be a table, got {table!r}", "--config")
    parameters = {name: p for name, p in inspect.signature(function).parameters.items()
                  if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in skip}
    unknown = set(table) - set(parameters)
    if unknown:
        raise InputError(f"unknown keys {sorted(unknown)} in [{section}]; valid keys: "
                         f"{sorted(parameters)}", "--config")
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # annotations that do not resolve: leave the checks to the function
        hints = {}
    for name, value in table.items():
        if name in hints and not _matches(value, hints[name]):
            raise InputError(f"[{section}] {name} must be {_describe(hints[name])}, got "
                             f"{value!r}", "--config")
    return dict(table)


def given(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags that were given (not None)."""
    return {k: v for k, v in flags.items() if v is not None}


def model_table(table: Mapping[str, Any], defaults: Mapping[str, Any],
                flags: Mapping[str, Any]) -> dict[str, Any]:
    """Model arguments: defaults, then the TOML ``[model]`` table, then flags that were given."""
    return {**defaults, **table.get("model", {}), **given(flags)}


def fail_cleanly(func: Callable) -> Callable:
    """Turn the library's documented errors into one-line CLI errors (exit code 1)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from operators.base import release_locks

        try:
            return func(*args, **kwargs)
        except KeyError as err:  # str(KeyError) is the repr of its argument
            message = err.args[0] if len(err.args) == 1 and isinstance(err.args[0], str) else err
            raise click.ClickException(str(message)) from err
        except (FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                PermissionError, ValueError) as err:
            raise click.ClickException(_one_line(err)) from err
        except zipfile.BadZipFile as err:  # an .npz or torch archive cut short
            raise click.ClickException(f"a saved file is damaged (not a complete archive: "
                                       f"{err}); restore it or retrain the run") from err
        except MemoryError as err:
            raise click.ClickException(f"not enough memory for this size ({_one_line(err)}); "
                                       "lower the sizes") from err
        finally:
            release_locks()  # the outputs this command locked are free again
    return wrapper


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line."""
    return " ".join(str(err).split()) or type(err).__name__


def apply(func: Callable, options: Iterable[Callable]) -> Callable:
    """Decorate ``func`` with click options listed top to bottom as they appear in ``--help``."""
    for option in reversed(list(options)):
        func = option(func)
    return func


def option_group(options: Iterable[Callable]) -> Callable:
    """One decorator for several click options (see :func:`apply`)."""
    options = list(options)
    return lambda func: apply(func, options)


# ------------------------------------------------------------------ options from dataclasses
def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_shown(v) for v in value)
    if value is None or value is False:
        return "off"
    if value is True:
        return "on"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise KeyError(f"{cls.__name__} has no field {name!r}")
    return _default(fields[name])


def field_option(cls: type, name: str, *decls: str, help: str, shown: str | None = None,
                 **kwargs) -> Callable:
    """A click option for field ``name`` of dataclass ``cls``, its default taken from ``cls``.

    The option's value is ``None`` unless given (so :func:`config_from` keeps the TOML value or
    the dataclass default); the help text ends with the default in brackets (``shown``
    replaces it where it depends on other fields). ``decls`` default to ``--field-name``; the
    option type defaults to the type of the default value.
    """
    default = field_default(cls, name)
    if "type" not in kwargs and not kwargs.get("is_flag"):
        sample = default[0] if isinstance(default, (list, tuple)) and default else default
        if isinstance(sample, bool):
            kwargs["is_flag"] = True
        elif isinstance(sample, (int, float, str)):
            kwargs["type"] = type(sample)
    if kwargs.get("is_flag"):
        kwargs.setdefault("default", None)
    decls = decls or (f"--{name.replace('_', '-')}",)
    text = help.rstrip(".")
    return click.option(*decls, name, help=f"{text} [{shown or _shown(default)}].", **kwargs)


def fields_options(cls: type, helps: Mapping[str, str | tuple[str, dict[str, Any]]]
                   ) -> list[Callable]:
    """:func:`field_option` for several fields: ``{name: help}`` or ``{name: (help, kwargs)}``
    (``kwargs`` may hold ``decls``, ``shown``, ``type``, ...)."""
    options = []
    for name, spec in helps.items():
        text, kwargs = (spec, {}) if isinstance(spec, str) else spec
        kwargs = dict(kwargs)
        decls = kwargs.pop("decls", ())
        options.append(field_option(cls, name, *decls, help=text, **kwargs))
    return options


# ------------------------------------------------------------------ parsing helpers
def float_list(value: str | None, option: str) -> tuple[float, ...] | None:
    """Parse a comma-separated list of numbers (``"0.1,0.4,1"``); None stays None."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return tuple(float(v) for v in items)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers such as 0.1,0.4,1.0, got "
                                 f"{value!r}", param_hint=option) from None


def names(text: str | None, option: str, allow_empty: bool = False) -> list[str] | None:
    """Parse comma-separated names; None stays None, ``""`` is an empty list if allowed."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items and not allow_empty:
        raise click.BadParameter(f"expected comma-separated names, got {text!r}",
                                 param_hint=option)
    return items


# ------------------------------------------------------------------ shared option groups
def out_option(help: str, name: str = "out", file: bool = True) -> Callable:
    """``--out``: a file (``file=True``) or a folder to write."""
    kind = click.Path(dir_okay=False) if file else click.Path(file_okay=False)
    return click.option("--out", name, required=True, type=kind, help=help)


def config_option(help: str) -> Callable:
    """``--config FILE.toml``."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), help=help)


def overwrite_option(what: str = "existing outputs") -> Callable:
    """``--overwrite``: without it nothing that exists is replaced."""
    return click.option("--overwrite", is_flag=True, help=f"Replace {what}.")


def shard_options(func: Callable) -> Callable:
    """--shard I/N, --shards N and --resume for generators that support sharding."""
    return apply(func, [
        click.option("--shard", "shard", help="Write only shard I of N (e.g. 3/64): samples "
                     "of one contiguous block, to OUT.shard-I-of-N.nc (for job arrays)."),
        click.option("--shards", "n_shards", type=click.IntRange(min=1),
                     help="Write all N shards, one after another, to OUT.shard-I-of-N.nc."),
        click.option("--resume", is_flag=True, help="With --shard/--shards: keep shards whose "
                     "files exist and validate, generate the rest."),
    ])


def generate_sharded(generate_fn, config, out, shard, n_shards, resume, overwrite) -> bool:
    """Write the requested shards; False when no sharding was asked for."""
    from surrogates.data.shards import generate_shards, parse_shard

    if shard is None and n_shards is None:
        if resume:
            raise click.UsageError("--resume applies to --shard / --shards")
        return False
    if shard is not None and n_shards is not None:
        raise click.UsageError("give --shard I/N (one shard) or --shards N (all), not both")
    index, count = parse_shard(shard) if shard is not None else (None, n_shards)
    started = time.perf_counter()
    written = generate_shards(generate_fn, config, dataclasses.asdict(config), out, count,
                              indices=None if index is None else [index], resume=resume,
                              overwrite=overwrite)
    for path, new in written:
        click.echo(f"{'wrote' if new else 'kept (complete)'} {path}")
    click.echo(f"{sum(new for _, new in written)} shard(s) written in "
               f"{time.perf_counter() - started:.1f} s")
    return True


def fit_options(defaults: Mapping[str, Any] | None = None) -> Callable:
    """Options of the optimisation (:class:`~surrogates.training.TrainConfig` fields, with the
    command's ``defaults`` replacing the dataclass's in the help) and ``--resume``."""
    from surrogates.training import TrainConfig

    defaults = dict(defaults or {})

    def shown(name: str) -> str | None:
        return _shown(defaults[name]) if name in defaults else None

    helps = {
        "epochs": "Epochs",
        "batch_size": "Global batch size: under torchrun the sum over processes",
        "lr": "Learning rate",
        "weight_decay": "Weight decay",
        "optimizer": ("Optimiser", {"type": click.Choice(["adam", "adamw"])}),
        "scheduler": ("Learning-rate schedule",
                      {"type": click.Choice(["cosine", "step", "onecycle", "none"])}),
        "loss": ("Training loss", {"type": click.Choice(["relative_l2", "relative_h1", "mse"])}),
        "patience": ("Early-stopping patience in epochs", {"type": int}),
        "grad_clip": ("Clip the gradient norm to this", {"type": float}),
        "seed": "Seed of weights and batches",
        "device": "auto, cpu, cuda, cuda:1, ...; under torchrun each process takes "
                  "cuda:LOCAL_RANK",
        "amp": "Mixed precision (float16 autocast + GradScaler); CUDA only",
    }
    options = []
    for name, spec in helps.items():
        text, kwargs = (spec, {}) if isinstance(spec, str) else spec
        options.append(field_option(TrainConfig, name, help=text, shown=shown(name), **kwargs))
    options.append(click.option("--resume", is_flag=True,
                                help="Continue the run in --out from its checkpoint."))
    return lambda func: apply(func, options)


def train_config_from(table: Mapping[str, Any], flags: Mapping[str, Any],
                      defaults: Mapping[str, Any] | None = None):
    """:class:`~surrogates.training.TrainConfig` from ``defaults``, the TOML ``[train]`` table and
    the flags of :func:`fit_options`, in that order."""
    from surrogates.training import TrainConfig

    return config_from(TrainConfig, {**(defaults or {}), **table.get("train", {})}, flags)


def run_argument(func: Callable) -> Callable:
    """``RUN_DIR``: a run folder (with ``run_config.json``) to read."""
    return click.argument("run_dir", type=click.Path(file_okay=False, exists=True))(func)


SPLITS = ("train", "validation", "test", "all")


def split_option(default: str = "test", splits: Iterable[str] = SPLITS) -> Callable:
    """``--split``: which split of the run's dataset (recomputed with the run's seed)."""
    return click.option("--split", default=default, show_default=True,
                        type=click.Choice(list(splits)))


def evaluate_options(splits: Iterable[str] = SPLITS,
                     data_help: str = "Dataset to evaluate on [the training dataset].") -> Callable:
    """``--data``, ``--split`` and ``--out`` of every family's ``evaluate``."""
    return option_group([
        click.option("--data", "data_path", type=click.Path(), help=data_help),
        split_option("test", splits),
        click.option("--out", "out_dir", type=click.Path(file_okay=False),
                     help="Output folder [RUN_DIR/evaluation]."),
    ])


def predict_options(out_help: str, data_help: str = "Dataset to predict on [the training "
                    "dataset].", split: str = "test") -> Callable:
    """``--data``, ``--split``, ``--out FILE`` and ``--overwrite`` of a family's ``predict``."""
    return option_group([
        click.option("--data", "data_path", type=click.Path(), help=data_help),
        split_option(split),
        click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
                     help=out_help),
        overwrite_option("OUT if it exists"),
    ])


def file_predictor(write: Callable[..., Any], doc: str, out_help: str, *,
                   data_help: str = "Dataset to predict on [the training dataset].",
                   split: str = "test") -> click.Command:
    """A family's ``predict RUN_DIR --data --split --out FILE --overwrite`` command.

    ``write(run_dir, data_path, out, split, overwrite)`` writes the predictions and returns the
    path written; ``doc`` is the command's help.
    """
    @fail_cleanly
    def predict(run_dir, data_path, split, out, overwrite) -> None:
        click.echo(f"wrote {write(run_dir, data_path, out, split, overwrite)}")

    predict.__doc__ = doc
    return click.command("predict")(
        run_argument(predict_options(out_help, data_help, split)(predict)))


def echo_training(result, run_dir, seed: int, loss: str = "validation loss",
                  units: str = "") -> None:
    """Print what training reached: one run's best ``loss`` and its epoch, or, for an ensemble
    (a list of results, seeds ``seed, seed + 1, ...``), every member's best ``loss``."""
    unit = f" {units}" if units else ""
    if isinstance(result, list):
        losses = ", ".join(f"{r.best_validation_loss:.4e}" for r in result)
        click.echo(f"trained an ensemble of {len(result)} (seeds {seed}.."
                   f"{seed + len(result) - 1}); best {loss} per member {losses}{unit}; run in "
                   f"{run_dir}")
    else:
        click.echo(f"trained {len(result.history)} epochs; best {loss} "
                   f"{result.best_validation_loss:.4e}{unit} at epoch {result.best_epoch}; run "
                   f"in {run_dir}")


def echo_uq_block(block: Mapping[str, Any] | None) -> None:
    """Print the ``uq`` entry of ``metrics.json``: one report per output (:func:`echo_uq`)."""
    for name, report in (block or {}).items():
        click.echo(f"{name}:")
        echo_uq(report)


def echo_uq(report: Mapping[str, Any] | None) -> None:
    """Print the ``uq`` block of ``metrics.json`` (:func:`surrogates.runs.calibration.uq_report`):
    coverage and width at each level, CRPS, NLL and spread-skill, before and after calibration."""
    if not report:
        return
    raw = report.get("raw")
    if raw is None:
        click.echo(f"uncertainty: {report.get('note', 'none')}")
    else:
        cover = ", ".join(f"{float(k):.0%} {v:.3f}" for k, v in raw["coverage"].items())
        nll = f"{raw['nll']:.4g}" if "nll" in raw else "n/a"
        click.echo(f"uncertainty ({raw['form']}): coverage {cover}; CRPS {raw['crps']:.4g}, NLL "
                   f"{nll}, spread-skill {raw.get('spread_skill', float('nan')):.3f}")
        for note in raw.get("notes", []):
            click.echo(f"  note: {note}")
    calibrated = report.get("calibrated")
    if calibrated:
        cover = ", ".join(f"{float(k):.0%} {v:.3f} (whole fields "
                          f"{calibrated['field_coverage'][k]:.3f})"
                          for k, v in calibrated["coverage"].items())
        click.echo(f"after conformal calibration on {calibrated['n_calibration']} examples: "
                   f"coverage {cover}; CRPS {calibrated['crps']:.4g}, NLL "
                   f"{calibrated['nll']:.4g}")
