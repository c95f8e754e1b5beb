"""Command line: `annfast <command>` or `python -m annfast <command>`."""
import argparse
import sys


def _cmd_demo(args):
    from .demo import xor_demo
    xor_demo(epochs=args.epochs, seed=args.seed)
    return 0


def _cmd_info(args):
    from ._info import show_config
    show_config()
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="annfast", description="Fast neural networks in C with OpenMP.")
    sub = p.add_subparsers(dest="command", metavar="command")
    d = sub.add_parser("demo", help="train the tutorial XOR network and compare with NumPy")
    d.add_argument("--epochs", type=int, default=10000, help="training epochs (default 10000)")
    d.add_argument("--seed", type=int, default=42, help="np.random.seed for the weights (default 42)")
    d.set_defaults(func=_cmd_demo)
    i = sub.add_parser("info", help="version, build, CPU features, kernel path, threads")
    i.set_defaults(func=_cmd_info)
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
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"annfast: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
