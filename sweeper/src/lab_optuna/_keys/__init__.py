"""The sweeper's keys: their definition (``config.py``), the settings read from them and their
checks, the sampler's and pruner's arguments (``arguments.py``) and the app's keys that a sweep
searches or fixes (``app_keys.py``)."""
