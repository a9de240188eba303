"""The ``edgeseg`` command line: one thin click command per stage, each calling one function."""
