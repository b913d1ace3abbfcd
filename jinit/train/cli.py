"""``jinit compare``: train an MLP under several initializers and report how each converges."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from jinit.train.datasets import DATASETS, Dataset
from jinit.train.loop import OPTIMIZERS, TrainConfig
from jinit.train.model import ACTIVATIONS, InitSpec, MLPConfig
from jinit.train.study import DEFAULT_INITS

DEFAULT_DEPTH = 10
DEFAULT_WIDTH = 32
DEFAULT_OUT = "runs/compare"

EPILOG = """\
initializer specs (--inits, --init, --bias-init), each one of:
  NAME                        any name jinit.get accepts: he_normal, torch.kaiming_uniform
  NAME:KEY=VALUE[:KEY=VALUE]  with arguments: normal:stddev=0.1, orthogonal:scale=1.414
  '{"name": ..., KEY: VALUE}' a JSON dict spec (quote it for the shell)

examples:
  jinit compare                                  # the default study (under a minute on CPU)
  jinit compare --inits he_normal,glorot_normal --depth 20 --width 64 --steps 500
  jinit compare --inits he_normal,normal:stddev=0.1 --init '{"name": "orthogonal", "scale": 2}'
  jinit compare --dataset digits --hidden 64,32 --activation tanh --optimizer adam --lr 1e-3
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0; got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0; got {text!r}")
    return value


def _widths(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        widths = ()
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths >= 1 such as 10,5; got {text!r}"
        )
    return widths


def split_specs(text: str) -> list[str]:
    """Splits ``text`` at the commas that are outside braces, brackets and quotes.

    Examples:
        >>> split_specs('he_normal,{"name": "normal", "stddev": 0.1}')
        ['he_normal', '{"name": "normal", "stddev": 0.1}']
    """
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _value(text: str) -> Any:
    """A ``KEY=VALUE`` value: JSON (numbers, true/false/null, lists, quoted strings) or a bare
    word as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_spec(text: str) -> InitSpec:
    """One initializer spec from the shell, in one of three forms.

    - ``NAME``: any name :func:`jinit.get` accepts (``he_normal``, ``torch.kaiming_uniform``);
    - ``NAME:KEY=VALUE[:KEY=VALUE...]``: the factory called with those arguments, values as
      JSON (``normal:stddev=0.1``, ``variance_scaling:scale=2:mode=fan_in``);
    - a JSON object, the dict spec of :func:`jinit.get` (``{"name": "normal", "stddev": 0.1}``).

    Examples:
        >>> parse_spec("normal:stddev=0.1")
        {'name': 'normal', 'stddev': 0.1}
        >>> parse_spec('{"name": "orthogonal", "scale": 1.41}')
        {'name': 'orthogonal', 'scale': 1.41}
    """
    text = text.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"invalid JSON in {text!r}: {err}") from None
        if not isinstance(loaded, dict) or "name" not in loaded:
            raise argparse.ArgumentTypeError(
                f'a JSON spec must be an object with a "name"; got {text!r}'
            )
        return loaded
    name, *pairs = text.split(":") if ":" in text and "=" in text else (text,)
    if not pairs:
        if not text:
            raise argparse.ArgumentTypeError("expected an initializer name; got ''")
        return text
    spec: dict[str, Any] = {"name": name.strip()}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise argparse.ArgumentTypeError(
                f"expected NAME:KEY=VALUE[:KEY=VALUE...] such as normal:stddev=0.1; got {text!r}"
            )
        spec[key.strip()] = _value(value.strip())
    return spec


def _names(text: str) -> list[InitSpec]:
    specs = [parse_spec(part) for part in split_specs(text)]
    if not specs:
        raise argparse.ArgumentTypeError(f"expected comma-separated initializers; got {text!r}")
    return specs


def build_parser() -> argparse.ArgumentParser:
    """The ``jinit compare`` argument parser."""
    p = argparse.ArgumentParser(
        prog="jinit compare",
        description=textwrap.fill(
            "Train a small Flax MLP from several initializers and seeds (one compiled program), "
            "print a table and write results.json, report.md, loss_curves.png and "
            "activations.png. Without arguments: 7 initializers x 3 seeds on 'spirals' with "
            f"{DEFAULT_DEPTH} hidden ReLU layers of {DEFAULT_WIDTH}."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="spirals", choices=DATASETS, help="default: spirals")
    p.add_argument(
        "--n-samples",
        type=_positive_int,
        metavar="N",
        default=None,
        help="examples before the split (default 500; digits: 1797)",
    )
    arch = p.add_argument_group("architecture (--hidden, or --depth and --width)")
    arch.add_argument(
        "--hidden", type=_widths, default=None, metavar="W1,W2,...", help="hidden widths, e.g. 10,5"
    )
    arch.add_argument(
        "--depth",
        type=_positive_int,
        metavar="D",
        default=None,
        help=f"number of hidden layers (default {DEFAULT_DEPTH})",
    )
    arch.add_argument(
        "--width",
        type=_positive_int,
        metavar="W",
        default=None,
        help=f"units per hidden layer (default {DEFAULT_WIDTH})",
    )
    arch.add_argument(
        "--activation",
        default="relu",
        choices=tuple(ACTIVATIONS),
        help="hidden nonlinearity (default: relu)",
    )
    arch.add_argument(
        "--bias-init",
        type=parse_spec,
        default="zeros",
        metavar="SPEC",
        help="bias initializer spec (default: zeros)",
    )
    p.add_argument(
        "--inits",
        type=_names,
        metavar="SPEC,SPEC,...",
        default=None,
        help=f"comma-separated initializer specs (default: {','.join(DEFAULT_INITS)})",
    )
    p.add_argument(
        "--seeds", type=_positive_int, metavar="N", default=3, help="seeds per init (default 3)"
    )
    train = TrainConfig()
    p.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        default=train.steps,
        help=f"optimizer steps (default {train.steps})",
    )
    p.add_argument(
        "--optimizer",
        default=train.optimizer,
        choices=OPTIMIZERS,
        help=f"default: {train.optimizer} (SGD with momentum 0.9)",
    )
    p.add_argument(
        "--lr",
        type=_positive_float,
        default=train.learning_rate,
        help=f"learning rate (default {train.learning_rate})",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        default=None,
        help="minibatch size (default: full batch)",
    )
    p.add_argument(
        "--target-loss",
        type=_nonnegative_float,
        metavar="LOSS",
        default=train.target_loss,
        help=f"loss defining steps-to-target, >= 0 (default {train.target_loss})",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"output directory (default {DEFAULT_OUT}, or {DEFAULT_OUT}-2, ... if taken)",
    )
    p.add_argument(
        "--init",
        type=parse_spec,
        action="append",
        metavar="SPEC",
        help="one more initializer (repeatable; after those of --inits)",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite the results of an earlier run in --out"
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (or the plain progress lines without tqdm)",
    )
    _add_issue11_options(p)
    return p


# --- checks made before any work starts (each exits with status 2 and one message) --------

MAX_SEEDS = 1000
MAX_INITS = 100
MAX_STEPS = 1_000_000
MAX_WIDTH = 16_384
MAX_DEPTH = 1_000
MAX_SAMPLES = 1_000_000
MAX_BYTES = 8 * 2**30
"""Refused sizes: beyond these a study would not fit in memory or finish in a day on CPU."""

_INPUTS = {"digits": (64, 10)}  # (features, classes); the synthetic datasets are 2-D, binary


def _label(spec: InitSpec) -> str:
    if isinstance(spec, dict):
        return "{}({})".format(
            spec.get("name", "?"), ", ".join(f"{k}={v!r}" for k, v in spec.items() if k != "name")
        )
    return str(spec)


def check_sizes(args: argparse.Namespace, hidden: tuple[int, ...], n_inits: int) -> str | None:
    """A message if the study is absurdly large (see ``MAX_*``), else ``None``."""
    limits = (
        ("--seeds", args.seeds, MAX_SEEDS),
        ("--steps", args.steps, MAX_STEPS),
        ("--n-samples", args.n_samples or 0, MAX_SAMPLES),
        ("--hidden/--depth", len(hidden), MAX_DEPTH),
        ("--hidden/--width", max(hidden, default=0), MAX_WIDTH),
        ("--inits", n_inits, MAX_INITS),
    )
    for option, value, limit in limits:
        if value > limit:
            return f"argument {option}: {value} is too large (at most {limit})"
    n_in, n_out = _INPUTS.get(args.dataset, (2, 2))
    widths = (n_in, *hidden, n_out)
    params = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    runs = n_inits * args.seeds
    n_train = int(0.8 * (args.n_samples or (1797 if args.dataset == "digits" else 500)))
    batch = min(args.batch_size or n_train, n_train)
    # Per network, float32: params, gradients, two optimizer moments and the new params;
    # the loss curve; and a batch's activations (pre, post and their gradients).
    total = runs * 4 * (5 * params + (args.steps + 1) + 3 * batch * sum(widths))
    if total > MAX_BYTES:
        return (
            f"this study needs about {total / 2**30:.0f} GiB ({runs} networks of {params:,} "
            f"parameters, batches of {batch}, {args.steps} steps); the limit is "
            f"{MAX_BYTES // 2**30} GiB. Use fewer --seeds or --inits, smaller layers or a "
            "smaller --batch-size."
        )
    return None


def check_out(out: str, force: bool, default: bool) -> tuple[str, str | None]:
    """The output folder to use and a note, after checking it can be written.

    An existing folder that is not empty is refused unless ``force`` (for the default
    folder, the next free name ``DIR-2``, ``DIR-3``... is used instead).

    Raises:
        ValueError: with the message to print.
    """
    import os
    from pathlib import Path

    path = Path(out)
    note = None
    if path.exists() and not path.is_dir():
        raise ValueError(f"argument --out: {out} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        n = 2
        while Path(f"{out}-{n}").exists():
            n += 1
        free = f"{out}-{n}"
        if not default:
            raise ValueError(
                f"argument --out: {out} is not empty (an earlier run?); pass --force to "
                f"overwrite its files, or choose a new folder such as --out {free}"
            )
        note = f"{out} holds an earlier run; writing to {free} (--force overwrites {out})"
        path = Path(free)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".jinit-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"argument --out: cannot write to {str(path)!r}: {err.strerror or err}"
        ) from None
    return str(path), note


def probe_init(option: str, spec: InitSpec, shapes: Sequence[tuple[int, ...]]) -> str | None:
    """A message if ``spec`` cannot build, or cannot initialize every shape in ``shapes``.

    The shapes are the real ones of the model (kernels ``(in, out)``, biases ``(out,)``), so
    conv-only initializers (``dirac``, ``delta_orthogonal``) and matrix-only ones used as a
    bias (``orthogonal``, ``identity``) are caught before training. Small shapes are drawn
    for real and must give finite values.
    """
    import math

    import jax
    import jax.numpy as jnp
    import numpy as np

    import jinit

    label = _label(spec)
    try:
        init = jinit.get(spec)
    except (ValueError, TypeError) as err:
        return f"argument {option}: {label}: {err}"
    if init is None:
        return f"argument {option}: {label}: names no initializer"
    kind = "bias" if option == "--bias-init" else "dense kernel"
    key = jax.random.key(0)
    for shape in dict.fromkeys(shapes):
        try:
            if math.prod(shape) <= 1 << 16:
                values = np.asarray(init(key, shape, jnp.float32))
                if not np.isfinite(values).all():
                    return f"argument {option}: {label} gives non-finite values for shape {shape}"
            else:
                jax.eval_shape(lambda k, shape=shape: init(k, shape, jnp.float32), key)
        except Exception as err:  # any failure here is the user's choice of initializer
            return f"argument {option}: {label} cannot initialize a {kind} of shape {shape}: {err}"
    return None


def probe_compare_spec(spec: InitSpec, kernels: Sequence[tuple[int, ...]]) -> str | None:
    """:func:`probe_init` for a ``compare`` spec: also ``lsuv`` and per-layer ``a+b+c`` lists.

    A per-layer list is checked layer by layer on that layer's kernel shape; an LSUV spec
    checks the initializer it starts from (orthogonal unless it names one).
    """
    from collections.abc import Mapping

    from jinit.train.study import _is_layer_list, _is_lsuv, check_init_spec

    try:
        spec = check_init_spec(spec)
    except (ValueError, TypeError) as err:
        return f"argument --inits: {_label(spec)}: {err}"
    if _is_lsuv(spec):
        inner = spec.get("init") if isinstance(spec, Mapping) else None
        return None if inner is None else probe_compare_spec(inner, kernels)
    if _is_layer_list(spec):
        layers: list[InitSpec] = list(spec)  # type: ignore[arg-type]
        if len(layers) != len(kernels):
            return (
                f"argument --inits: a per-layer spec needs one initializer per layer "
                f"({len(kernels)}: the hidden layers and the output layer); got {len(layers)}: "
                f"{'+'.join(map(_label, layers))}"
            )
        for part, shape in zip(layers, kernels, strict=True):
            problem = probe_init("--inits", part, [shape])
            if problem:
                return problem
        return None
    return probe_init("--inits", spec, kernels)


def missing_optional(dataset: str, progress: bool) -> tuple[list[str], str | None]:
    """(notes about optional packages that are missing, an error if one is required)."""
    from importlib.util import find_spec

    notes = []
    if find_spec("matplotlib") is None:
        notes.append(
            "matplotlib is not installed: figures are skipped (results.json and report.md "
            "are written); `pip install matplotlib` or `pip install 'jinit[train]'` adds them"
        )
    if progress and find_spec("tqdm") is None:
        notes.append(
            "tqdm is not installed: no progress bar; plain progress lines instead "
            "(`pip install tqdm` adds one)"
        )
    error = None
    if dataset == "digits" and find_spec("sklearn") is None:
        error = (
            "argument --dataset: 'digits' is scikit-learn's copy of the UCI digits and needs "
            "it: `pip install scikit-learn` (or `pip install 'jinit[train]'`)"
        )
    return notes, error


_OPTIONS = {
    "n_samples": "--n-samples",
    "batch_size": "--batch-size",
    "learning_rate": "--lr",
    "target_loss": "--target-loss",
    "steps": "--steps",
    "hidden": "--hidden",
    "activation": "--activation",
    "optimizer": "--optimizer",
}


def as_option(message: str) -> str:
    """A library message about ```n_samples``` etc. told in terms of the shell option.

    Examples:
        >>> as_option("`n_samples` must be an int >= 10 or None; got 5.")
        'argument --n-samples: must be an int >= 10 or None; got 5.'
    """
    for name, option in _OPTIONS.items():
        if message.startswith(f"`{name}` "):
            return f"argument {option}: {message[len(name) + 3 :]}"
    return message


def _error(message: str) -> int:
    print(f"jinit compare: error: {message}", file=sys.stderr)
    return 2


# --- issue 11: heads, bias-free nets, sweeps, relative targets, dataset options, custom data ---
def _rates(text: str) -> list[float]:
    rates = [_positive_float(p.strip()) for p in text.split(",") if p.strip()]
    if not rates:
        raise argparse.ArgumentTypeError(f"expected comma-separated rates > 0; got {text!r}")
    return rates


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1]; got {text!r}")
    return value


def _add_issue11_options(p: argparse.ArgumentParser) -> None:
    from jinit.train.model import LOSSES
    from jinit.train.study import SELECT

    more = p.add_argument_group(
        "heads, sweeps and data (--inits also takes 'lsuv' and per-layer 'a+b+c' specs)"
    )
    more.add_argument(
        "--loss",
        default="softmax",
        choices=LOSSES,
        help="output head: softmax (cross-entropy), sigmoid (one output, binary "
        "cross-entropy), mse (default: softmax)",
    )
    more.add_argument("--no-bias", action="store_true", help="layers without biases")
    more.add_argument(
        "--lr-sweep",
        type=_rates,
        metavar="LR,LR,...",
        default=None,
        help="train every init at each rate (one program) and keep each init's best",
    )
    more.add_argument(
        "--select",
        default="final_loss",
        choices=SELECT,
        help="how --lr-sweep picks a rate (default: final_loss)",
    )
    more.add_argument(
        "--target-fraction",
        type=_fraction,
        metavar="F",
        default=None,
        help="relative target: steps to F x each run's initial loss (replaces --target-loss)",
    )
    more.add_argument(
        "--noise", type=_nonnegative_float, default=None, help="noise std of synthetic data"
    )
    more.add_argument(
        "--factor", type=_positive_float, default=None, help="circles: inner radius in (0, 1)"
    )
    more.add_argument(
        "--test-fraction",
        type=_positive_float,
        metavar="F",
        default=0.2,
        help="held-out fraction in (0, 1) (default 0.2)",
    )
    more.add_argument(
        "--no-standardize", action="store_true", help="keep the raw features (no standardizing)"
    )
    more.add_argument(
        "--data",
        metavar="FILE.npz",
        default=None,
        help="custom data: an .npz with arrays x and y (optional x_test, y_test); "
        "replaces --dataset",
    )


def _issue11_data(args: argparse.Namespace) -> Dataset:
    """The dataset from --data or --dataset with the dataset options."""
    from jinit.train.datasets import load_dataset, load_npz

    if args.data is not None:
        return load_npz(
            args.data, test_fraction=args.test_fraction, standardize=not args.no_standardize
        )
    return load_dataset(
        args.dataset,
        n_samples=args.n_samples,
        noise=args.noise,
        factor=args.factor,
        test_fraction=args.test_fraction,
        standardize=not args.no_standardize,
    )


# --- end of issue 11 options --------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``jinit compare`` with ``argv`` (the arguments after the word ``compare``).

    Every check of the arguments, the optional packages, the output folder and the
    initializers (on the model's real shapes) happens before any training.

    Returns:
        The exit status: 0, or 2 for a bad argument (argparse exits itself for those it
        checks) with a message naming it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.hidden is not None and (args.depth is not None or args.width is not None):
        parser.error("argument --hidden: give either --hidden or --depth/--width, not both")
    hidden = args.hidden
    if hidden is None:
        hidden = (args.width or DEFAULT_WIDTH,) * (args.depth or DEFAULT_DEPTH)
    specs: list[InitSpec] = list(args.inits or ([] if args.init else DEFAULT_INITS))
    specs += args.init or []
    labels = [_label(s) for s in specs]
    if len(set(labels)) != len(labels):
        parser.error(f"argument --inits: initializers must be distinct; got {','.join(labels)}")
    problem = check_sizes(args, hidden, len(specs))
    if problem:
        parser.error(problem)
    notes, problem = missing_optional(args.dataset, not args.no_progress)
    if problem:
        parser.error(problem)
    try:
        data = _issue11_data(args)
        model = MLPConfig(
            hidden=hidden,
            activation=args.activation,
            bias_init=args.bias_init,
            loss=args.loss,
            use_bias=not args.no_bias,
        )
        train = TrainConfig(
            steps=args.steps,
            optimizer=args.optimizer,
            learning_rate=args.lr,
            batch_size=args.batch_size,
            target_loss=args.target_loss,
        )
        if args.target_fraction is not None:
            train = dataclasses.replace(train, target_fraction=args.target_fraction)
    except (TypeError, ValueError, ImportError, OSError) as err:
        parser.error(as_option(str(err)))
    # The initializers on the model's real shapes (kernels (in, out), biases (out,)).
    widths = (data.n_features, *hidden, data.n_classes)
    kernels = list(itertools.pairwise(widths))
    for spec in specs:
        problem = probe_compare_spec(spec, kernels)
        if problem:
            parser.error(problem)
    if not args.no_bias:
        problem = probe_init("--bias-init", args.bias_init, [(w,) for w in widths[1:]])
        if problem:
            parser.error(problem)

    try:
        out, note = check_out(args.out or DEFAULT_OUT, args.force, args.out is None)
    except ValueError as err:
        parser.error(str(err))
    if note:
        notes.append(note)

    for line in notes:
        print(f"jinit compare: {line}", file=sys.stderr)
    n_runs = len(specs) * args.seeds
    if args.lr_sweep:
        n_rates = len(args.lr_sweep)
        runs = f"{n_runs * n_rates} runs ({len(specs)} inits x {args.seeds} seeds x {n_rates} lr)"
        lr = f"lr sweep {','.join(f'{r:g}' for r in args.lr_sweep)} (select {args.select})"
    else:
        runs = f"{n_runs} runs ({len(specs)} inits x {args.seeds} seeds)"
        lr = f"lr={args.lr}"
    head = "" if args.loss == "softmax" else f", {args.loss} loss"
    if args.target_fraction is not None:
        target = f"; target {args.target_fraction:g} x initial loss"
    else:
        target = ""
    print(
        f"jinit compare: {data!r}\n  MLP hidden={list(hidden)} {args.activation}{head}; "
        f"{runs}, {args.steps} steps of {args.optimizer} {lr}{target}",
        file=sys.stderr,
    )
    from jinit.train.study import compare

    progress = not args.no_progress
    try:
        study = compare(
            dict(zip(labels, specs, strict=True)),
            data,
            model=model,
            train=train,
            seeds=args.seeds,
            progress=progress,
            learning_rates=args.lr_sweep,
            select=args.select,
        )
    except (TypeError, ValueError) as err:
        return _error(str(err))
    try:
        paths = study.save(out)
    except OSError as err:
        return _error(f"could not write the results to {out!r}: {err}")
    print(study.table())
    if args.lr_sweep:
        chosen = ", ".join(f"{run['init']} {run['learning_rate']:g}" for run in study.runs)
        print(f"\nselected learning rates ({args.select}): {chosen}")
    print(f"\ntrained in {study.seconds:.1f} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0
