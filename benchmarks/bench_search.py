"""The search benchmark (issue 2, item 6): same as ``benchmarks/run.py``, under the issue's name.

.venv/bin/python benchmarks/bench_search.py --quick
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
