#!/usr/bin/env python3
"""Benchmark: the trainer against a minimal PyTorch loop and each loss against cross-entropy.

The same as `latentexp bench`; run `python scripts/bench.py --help` for the options, e.g.
`python scripts/bench.py --device cuda --models cnn,vgg16,resnet50 --json > docs/bench.json`.
"""

import sys

from latentexp.bench.command import main

if __name__ == "__main__":
    main(sys.argv[1:])
