"""``python -m edgeseg`` is the ``edgeseg`` command."""

from edgeseg.cli.main import main

if __name__ == "__main__":
    main()
