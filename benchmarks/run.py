"""Runs the jinit benchmarks (``jinit bench``); results go to benchmarks/results/.

Usage: ``python benchmarks/run.py [--quick] [--out DIR] [--repeats N] [--blas-threads N]``.
"""

import os
import sys

if __name__ == "__main__":
    # Run from a checkout without installing: put the repository root on the path.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from jinit.bench import main

    sys.exit(main())
