"""``python -m bot``: the ``signoff`` command."""

import sys

from bot.cli import main

sys.exit(main())
