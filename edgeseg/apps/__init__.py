"""The application layer: workflows that use several stages at once.

``demo`` (the bundled model through export and the runtime), ``bench`` with its artifacts and
report, ``default_model`` (the bundled checkpoint, exported on first use), ``synthetic_clip``
and ``evaluate`` (any exported artifact scored on a dataset). Allowed to import the core and
every stage; only ``edgeseg.cli`` imports it (``tests/core/test_layers.py`` checks both).
"""
