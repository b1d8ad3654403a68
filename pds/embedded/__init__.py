"""The embedded text-to-image prior ``pds-tiny``: its procedural data (:mod:`.data`), model
builders (:mod:`.model`), training script (:mod:`.train`) and the probe that judges its samples
(:mod:`.probe`). The trained model ships in ``pds/priors/pds-tiny`` and loads with
``pds.load_prior("pds-tiny")``."""
