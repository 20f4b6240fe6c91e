"""``python -m vidcls.serve``: the same as ``vidcls serve``."""

import sys

from ..cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
