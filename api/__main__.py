"""``python -m api``: migrate the database to the newest schema, then serve with uvicorn.

``python -m api <command>`` runs the admin CLI instead (``python -m api --help``).
"""

from __future__ import annotations

import sys

from api.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
