"""``python -m redfile_files.maintenance.consistency``: the same as ``redfile-check``."""

import sys

from redfile_files.maintenance.consistency.cli import main

sys.exit(main())
