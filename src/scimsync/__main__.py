"""``python -m scimsync``: the ``scimsync`` command (see :mod:`scimsync.cli`)."""

import sys

from scimsync.cli import main

if __name__ == "__main__":
    sys.exit(main())
