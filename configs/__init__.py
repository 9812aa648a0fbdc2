"""rnnkit's Hydra configs; an installed rnnkit ships them as ``rnnkit.configs`` (``pkg://``)."""
