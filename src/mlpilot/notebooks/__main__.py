"""``python -m mlpilot.notebooks NOTEBOOK [--no-html]``: execute a notebook in place."""

import sys

from mlpilot.notebooks._execute import _main

sys.exit(_main())
