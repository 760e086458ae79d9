"""``python -m synthsae``: the same as the ``synthsae`` command."""

import sys

from synthsae.cli import main

if __name__ == "__main__":
    sys.exit(main())
