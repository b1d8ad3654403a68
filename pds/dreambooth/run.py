"""Upstream's entry point: ``cd pds/dreambooth && python run.py --instance_prompt ... --save_dir ...``.

The same command as ``pds-dreambooth`` (see ``python run.py --help``).
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    # Run as a script, this folder is sys.path[0]; its modules (cli, train) must not shadow
    # top-level names, and the repository root must be importable without `pip install`.
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(here.parents[1]))
    from pds.entry import guard

    guard("run.py")  # Ctrl-C exits 130 from here on, through the import of torch
    from pds.cli.dreambooth import main

    main(prog_name="run.py")
