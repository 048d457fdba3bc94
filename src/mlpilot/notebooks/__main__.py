"""``python -m mlpilot.notebooks NOTEBOOK [--no-html]``: execute a notebook in place."""

import sys

from mlpilot.reports import run_notebook_command

sys.exit(run_notebook_command())
