"""Building the embedded prior ``pds-tiny`` (not part of the installed package): its procedural
data (:mod:`.data`), model shapes (:mod:`.model`), autoencoder (:mod:`.autoencoder`), training
script (:mod:`.train`) and the probe that judges samples (:mod:`.probe`, weights in
``probe.safetensors``). Run from the repository root, e.g. ``python -m tools.prior.train --help``.
The trained model ships in ``pds/priors/pds-tiny`` and loads with ``pds.load_prior("pds-tiny")``."""
