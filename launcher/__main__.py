"""`python -m launcher ...` is the `bytereview` command."""

import sys

from launcher.cli import main

sys.exit(main())
