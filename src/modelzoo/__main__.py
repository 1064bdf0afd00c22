"""python -m modelzoo == zoo."""

import sys

from .cli import main

sys.exit(main())
