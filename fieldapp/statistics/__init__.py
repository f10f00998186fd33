"""Statistics for the policy section and the bureau's leaders (art. 32): per unit and officer, by
month — models in ``models/statistics.py``, the figures' definitions in ``figures.toml``, the
computation in ``compute.py``, the pages in ``views.py``."""
