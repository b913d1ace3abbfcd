"""``jinit compare``: train an MLP under several initializers and report how each converges."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from collections.abc import Sequence

from jinit.train.datasets import DATASETS
from jinit.train.loop import OPTIMIZERS, TrainConfig
from jinit.train.model import ACTIVATIONS, MLPConfig
from jinit.train.study import DEFAULT_INITS

DEFAULT_DEPTH = 10
DEFAULT_WIDTH = 32

EPILOG = """\
examples:
  jinit compare                                  # the default study (under a minute on CPU)
  jinit compare --inits he_normal,glorot_normal --depth 20 --width 64 --steps 500
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


def _names(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names; got {text!r}")
    return names


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
        "--bias-init", default="zeros", metavar="NAME", help="bias initializer (default: zeros)"
    )
    p.add_argument(
        "--inits",
        type=_names,
        metavar="NAME,NAME,...",
        default=list(DEFAULT_INITS),
        help=f"comma-separated names accepted by jinit.get (default: {','.join(DEFAULT_INITS)})",
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
        default="runs/compare",
        metavar="DIR",
        help="output directory (default runs/compare)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_issue11_options(p)
    return p


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


def _issue11_data(args: argparse.Namespace) -> object:
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

    Returns:
        The exit status (0). Bad arguments exit with status 2 and a message naming them.
    """
    import jinit
    from jinit.train.study import compare

    parser = build_parser()
    args = parser.parse_args(argv)

    if args.hidden is not None and (args.depth is not None or args.width is not None):
        parser.error("argument --hidden: give either --hidden or --depth/--width, not both")
    hidden = args.hidden
    if hidden is None:
        hidden = (args.width or DEFAULT_WIDTH,) * (args.depth or DEFAULT_DEPTH)
    from jinit.train.study import check_init_spec  # issue 11: also 'lsuv' and 'a+b+c'

    for option, names in (("--inits", args.inits), ("--bias-init", [args.bias_init])):
        for name in names:
            try:
                check_init_spec(name) if option == "--inits" else jinit.get(name)
            except (ValueError, TypeError) as err:
                parser.error(f"argument {option}: {err}")
    if len(set(args.inits)) != len(args.inits):
        parser.error(f"argument --inits: names must be distinct; got {','.join(args.inits)}")

    from jinit.train.datasets import load_dataset

    try:
        data = load_dataset(args.dataset, n_samples=args.n_samples)
        model = MLPConfig(hidden=hidden, activation=args.activation, bias_init=args.bias_init)
        train = TrainConfig(
            steps=args.steps,
            optimizer=args.optimizer,
            learning_rate=args.lr,
            batch_size=args.batch_size,
            target_loss=args.target_loss,
        )
        # issue 11: dataset options, custom data, heads, bias-free nets, relative targets
        data = _issue11_data(args)
        model = dataclasses.replace(model, loss=args.loss, use_bias=not args.no_bias)
        if args.target_fraction is not None:
            train = dataclasses.replace(train, target_fraction=args.target_fraction)
    except (TypeError, ValueError, ImportError, OSError) as err:
        parser.error(str(err))

    n_runs = len(args.inits) * args.seeds
    print(
        f"jinit compare: {data!r}\n  MLP hidden={list(hidden)} {args.activation}; "
        f"{n_runs} runs ({len(args.inits)} inits x {args.seeds} seeds), {args.steps} steps "
        f"of {args.optimizer} lr={args.lr}",
        file=sys.stderr,
    )
    study = compare(
        args.inits,
        data,
        model=model,
        train=train,
        seeds=args.seeds,
        progress=not args.no_progress,
        learning_rates=args.lr_sweep,  # issue 11
        select=args.select,  # issue 11
    )
    print(study.table())
    paths = study.save(args.out)
    print(f"\ntrained in {study.seconds:.1f} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0
