"""``python -m fakeupstream``: the same as the ``fakeupstream`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
