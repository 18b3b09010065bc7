"""``python -m surrogates.cli``: the ``surrogates`` command (used under ``torchrun``)."""

import sys

from surrogates.cli import main

sys.exit(main())
