"""Command line: `annfast <command>` or `python -m annfast <command>`."""
import sys

from .cli_common import Parser


def _cmd_demo(args):
    from .demo import classification_demo, xor_demo
    xor_demo(epochs=args.epochs, seed=args.seed)
    print()
    classification_demo(epochs=args.class_epochs, seed=args.seed, verbose=args.verbose)
    return 0


def _cmd_info(args):
    from ._info import show_config
    show_config()
    return 0


def build_parser():
    from . import cli_bench, cli_predict, cli_train
    from .cli_common import nonneg_int, positive_int
    from . import __version__
    p = Parser(prog="annfast", description="Fast neural networks in C with OpenMP.")
    p.add_argument("--version", action="version", version=f"annfast {__version__}")
    sub = p.add_subparsers(dest="command", metavar="command")
    d = sub.add_parser("demo", help="train the tutorial XOR network and compare with NumPy, then a "
                                    "small classification problem",
                       description="The tutorial XOR network (timed against the NumPy class), then a "
                                   "small 3-class classification problem with progress and results.")
    d.add_argument("--epochs", type=positive_int, default=10000,
                   help="XOR training epochs (default 10000)")
    d.add_argument("--seed", type=nonneg_int, default=42, help="seed for the weights (default 42)")
    d.add_argument("--class-epochs", type=positive_int, default=30,
                   help="epochs for the classification part (default 30)")
    d.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                   help="classification progress: 0 none, 1 bar, 2 a line per epoch (default 2)")
    d.set_defaults(func=_cmd_demo)
    i = sub.add_parser("info", help="version, build, CPU features, kernel path, threads",
                       description="Show version, build (compiler, OpenMP), CPU features, the "
                                   "selected kernel path and the thread count.")
    i.set_defaults(func=_cmd_info)
    cli_train.add_parser(sub)
    cli_predict.add_parser(sub)
    cli_bench.add_parser(sub)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("annfast: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, MemoryError, ImportError, RuntimeError, KeyError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__  # one line, no traceback
        print(f"annfast {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
