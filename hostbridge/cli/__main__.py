"""``python -m hostbridge.cli``: ``ohp``."""

import sys

from hostbridge.cli._cli import main

sys.exit(main())
