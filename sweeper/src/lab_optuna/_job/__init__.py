"""Inside a job: the app's task run as its trial (``task.py``), its ``trial.json`` and its
artifacts."""
