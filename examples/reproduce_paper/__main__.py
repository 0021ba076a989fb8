"""``python -m examples.reproduce_paper`` (or ``python examples/reproduce_paper``): see main.py."""

import sys
from pathlib import Path

if not __package__:  # run as `python examples/reproduce_paper`: import it as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from reproduce_paper.main import main
else:
    from .main import main

if __name__ == "__main__":
    sys.exit(main())
