"""``python -m pds.dreambooth``: the same as ``pds-dreambooth``."""

if __name__ == "__main__":
    from ..entry import guard

    guard("python -m pds.dreambooth")  # Ctrl-C exits 130 from here on, through the import of torch
    from ..cli.dreambooth import main

    main(prog_name="python -m pds.dreambooth")
