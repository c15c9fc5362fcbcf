"""numpy-report: statistics of N seeded random samples, and the numpy build in use."""
import sys

import numpy as np


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 1000
    rng = np.random.default_rng(42)
    x = rng.normal(size=n)
    m = rng.normal(size=(64, 64))
    print("numpy %s: n=%d mean=%.4f std=%.4f det-sign=%d" % (np.__version__, n, x.mean(), x.std(), int(np.sign(np.linalg.det(m)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
