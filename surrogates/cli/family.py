"""A problem family on the command line, and the verbs that hand a run folder to its family.

A :class:`Family` is one row of :data:`surrogates.cli.FAMILIES`: the commands it adds under
``generate``, ``train`` and ``solve`` (and at the top level), the run kinds its runs modules
write (:data:`surrogates.runs.folder.KINDS`), and the commands that read its run folders:
``evaluate``, ``predict`` and ``export``. ``surrogates evaluate RUN_DIR ...`` reads the kind
from ``RUN_DIR/run_config.json`` and runs the command of the family that owns the kind with
the rest of the arguments (:func:`run_verb`), so no verb knows any family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

#: The verbs that read a run folder, and what each does.
RUN_VERBS = {
    "evaluate": "Metrics (JSON) and plots (PNG) of a trained run on held-out data.",
    "predict": "Predictions of a trained run, with their standard deviation where the model "
               "has one, written to a file.",
    "export": "Export a trained model for a host program (ONNX, torch.export, ...).",
}


@dataclass(frozen=True)
class Family:
    """One problem family's commands.

    Attributes
    ----------
    name : str
        The family's name, the same in every layer (``data/<name>.py``, ``runs/<name>.py``,
        ``cli/<name>.py``).
    kinds : tuple of str
        The ``run_config.json`` kinds of its run folders.
    generate, train, solve, commands : tuple of click.Command
        Added under ``surrogates generate``, ``train``, ``solve`` and at the top level.
    evaluate, predict, export : click.Command, optional
        Commands whose first argument is ``RUN_DIR``; ``surrogates VERB RUN_DIR ...`` runs them.
    example : tuple of str
        A tiny end-to-end run of the family, as command lines with ``{dir}`` for a scratch
        folder: data (or a solve), a run named ``{dir}/run``, and a prediction or export. The
        common tests (``tests/test_families.py``) run it for every row of ``FAMILIES``.
    """

    name: str
    kinds: tuple[str, ...]
    generate: tuple[click.Command, ...] = ()
    train: tuple[click.Command, ...] = ()
    solve: tuple[click.Command, ...] = ()
    commands: tuple[click.Command, ...] = ()
    evaluate: click.Command | None = None
    predict: click.Command | None = None
    export: click.Command | None = None
    example: tuple[str, ...] = ()


def family_of(run_dir: str, families: Sequence[Family]) -> Family:
    """The family whose commands read ``run_dir`` (from its ``run_config.json`` kind)."""
    from surrogates.runs.folder import read_run_config

    kind = read_run_config(run_dir)["kind"]
    for family in families:
        if kind in family.kinds:
            return family
    raise ValueError(f"no family reads runs of kind {kind!r} ({run_dir})")


def _verb_help(verb: str, families: Sequence[Family], ctx: click.Context) -> str:
    lines = [f"Usage: {ctx.command_path} RUN_DIR [OPTIONS]", "", f"  {RUN_VERBS[verb]}", "",
             "  The options depend on the family of the run in RUN_DIR (its run_config.json "
             "kind);", f"  `{ctx.command_path} RUN_DIR --help` shows them. Families:", ""]
    for family in families:
        command = getattr(family, verb)
        if command is None:
            continue
        summary = command.get_short_help_str(limit=70)
        flags = " ".join(sorted({opt for p in command.params if isinstance(p, click.Option)
                                 for opt in p.opts if opt.startswith("--")} - {"--help"}))
        lines += [f"  {family.name}: {summary}", f"      {flags}" if flags else ""]
    return "\n".join(line for line in lines if line is not None)


def run_verb(verb: str, families: Sequence[Family]) -> click.Command:
    """``surrogates VERB RUN_DIR [ARGS]...``: run the ``VERB`` command of ``RUN_DIR``'s family."""

    @click.command(verb, help=RUN_VERBS[verb], add_help_option=False,
                   context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def command(ctx: click.Context, args: tuple[str, ...]) -> None:
        run_dir = _run_dir(args)
        if run_dir is None:
            click.echo(_verb_help(verb, families, ctx))
            ctx.exit()
        try:
            family = family_of(run_dir, families)
        except (FileNotFoundError, ValueError) as err:
            raise click.ClickException(str(err)) from err
        sub = getattr(family, verb)
        if sub is None:
            offered = [f.name for f in families if getattr(f, verb) is not None]
            raise click.ClickException(f"{run_dir} is a {family.name} run, and `surrogates "
                                       f"{verb}` has no command for {family.name} runs (it has "
                                       f"one for {', '.join(offered)})")
        with sub.make_context(ctx.info_name, list(args), parent=ctx.parent) as sub_ctx:
            sub.invoke(sub_ctx)

    return command


def _run_dir(args: Sequence[str]) -> str | None:
    """The RUN_DIR among a verb's arguments: the first folder with a ``run_config.json``, else
    the first word that is not an option; None when there is none (or help is asked for
    without one)."""
    from surrogates.runs.folder import RUN_CONFIG_NAME

    for arg in args:
        if (Path(arg) / RUN_CONFIG_NAME).is_file():
            return arg
    if any(arg in ("-h", "--help") for arg in args):
        return None
    return next((arg for arg in args if not arg.startswith("-")), None)
