"""Runs the jinit benchmarks; results go to benchmarks/results/.

Usage: ``python benchmarks/run.py [--quick] [--out DIR] [--repeats N] [--blas-threads N]``
(``make bench``). The harness lives beside this file (``harness.py``), outside the package.
"""

import os
import sys

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    # Run from a checkout without installing: put the repository root on the path too.
    sys.path.insert(1, os.path.dirname(here))
    from harness import main

    sys.exit(main())
