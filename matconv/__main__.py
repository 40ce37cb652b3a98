"""``python -m matconv``: the same as the ``matconv`` command."""
import sys

from .cli import main

sys.exit(main())
