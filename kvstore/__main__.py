"""``python -m kvstore``: the command line."""

import sys

from kvstore.cli import main

sys.exit(main())
