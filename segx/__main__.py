"""`python -m segx ...`: the same CLI as the `segx` command."""
from segx.cli import main

if __name__ == "__main__":
    main()
