#!/usr/bin/env python3
"""Benchmark: `latentexp report` over N synthetic finished runs (latentexp/report/bench.py).

`python scripts/bench_report.py` prints the wall time and peak memory for 500 and 2,000 runs;
`--runs 100,500,2000` picks the sizes, `--no-figures` times the tables alone, `--help` for the rest.
"""

import sys

from latentexp.report.bench import main

if __name__ == "__main__":
    main(sys.argv[1:])
