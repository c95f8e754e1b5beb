"""Helpers shared by the CLI commands: a one-line-error argument parser and typed option parsers."""
import argparse
import sys


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are ONE line on stderr (`annfast <cmd>: error: ...`), exit 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _int_at_least(lo, expected):
    """argparse type factory: an int >= lo; errors say `expected`."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {v}")
        return v
    return parse


positive_int = _int_at_least(1, "a positive integer")   # argparse type: an int >= 1
nonneg_int = _int_at_least(0, "an integer >= 0")         # argparse type: an int >= 0


def positive_float(text):
    """argparse type: a finite float > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return v


def fraction(text):
    """argparse type: a float in [0, 1)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {v}")
    return v


def layer_sizes(text):
    """argparse type: comma-separated positive ints, e.g. '64,32' (empty string: no hidden layer)."""
    if text.strip() == "":
        return []
    out = []
    for part in text.split(","):
        try:
            v = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated positive integers like 64,32; got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {v} in {text!r}")
        out.append(v)
    return out


def target_column(text):
    """argparse type: a column name, or an int index when it parses as one."""
    try:
        return int(text)
    except ValueError:
        return text
