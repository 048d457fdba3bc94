"""The ``mlpilot`` command line."""

import time

#: When the command started: the job's runtime limit counts from here.
STARTED = time.monotonic()
