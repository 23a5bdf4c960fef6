"""``python -m engine`` is the ``maskwright`` command line."""

import sys

from engine.cli import main

sys.exit(main())
