"""The command line of the commands that read run directories (report, status, analyze)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def run_paths_parser(prog: str, description: str, metavar: str = "PATH",
                     help: str = "output roots or run directories") -> argparse.ArgumentParser:
    """An argument parser whose positional arguments are one or more paths to runs."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("paths", nargs="+", metavar=metavar, help=help)
    return parser
