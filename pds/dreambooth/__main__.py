"""``python -m pds.dreambooth``: the same as ``pds-dreambooth``."""

from ..cli.dreambooth import main

if __name__ == "__main__":
    main(prog_name="python -m pds.dreambooth")
