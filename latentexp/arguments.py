"""The command line of the commands that read run directories (report, status, analyze)."""

from __future__ import annotations

import argparse


def run_paths_parser(prog: str, description: str, metavar: str = "PATH",
                     help: str = "output roots or run directories") -> argparse.ArgumentParser:
    """An argument parser whose positional arguments are one or more paths to runs."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("paths", nargs="+", metavar=metavar, help=help)
    return parser
