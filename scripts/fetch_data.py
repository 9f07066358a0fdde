#!/usr/bin/env python
"""Fetch the datasets latentexp trains on, through torchvision's own download, and report where
each one is found. Run it once on a machine with internet access; copy ./data elsewhere if needed.

    python scripts/fetch_data.py                      # all datasets into ./data
    python scripts/fetch_data.py cifar10 --root /scratch/data
"""

from __future__ import annotations

import argparse
import sys

from latentexp.config.components import load_raw
from latentexp.errors import DataError

DATASETS = {
    "fashion_mnist": {},
    "cifar10": {"verify_md5": True},
    "cifar100": {"verify_md5": True},
    "mnist": {},
    "svhn": {"verify_md5": True},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help=f"datasets to fetch: {', '.join(DATASETS)} (default: all)")
    parser.add_argument("--root", default="data", help="directory to download into (default: ./data)")
    parser.add_argument("--no-download", action="store_true", help="only report what is found locally")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; valid: {', '.join(DATASETS)}")
    failed = 0
    for name in args.datasets or list(DATASETS):
        cfg = {"name": name, "root": args.root, "download": not args.no_download, **DATASETS[name]}
        try:
            raw = load_raw(cfg)
        except DataError as err:
            print(f"{name}: MISSING. {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {len(raw.train_y)} train / {len(raw.test_y)} test images, "
              f"{raw.num_classes} classes, from {raw.source}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
