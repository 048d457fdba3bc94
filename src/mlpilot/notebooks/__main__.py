"""``python -m mlpilot.notebooks NOTEBOOK [--no-html]``: execute a notebook in place."""

import sys

from mlpilot.reports import main

sys.exit(main())
