"""`python -m scoter` runs the command line."""

from scoter.cli import main

if __name__ == "__main__":
    main()
