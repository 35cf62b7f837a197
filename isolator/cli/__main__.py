"""``python -m isolator.cli``: the store's commands of ``ohp``."""

import sys

from isolator.cli._cli import main

sys.exit(main())
