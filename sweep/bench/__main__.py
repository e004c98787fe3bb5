"""``python -m sweep.bench`` (``make bench``): see ``sweep.bench``."""
import sys

from . import main

sys.exit(main())
