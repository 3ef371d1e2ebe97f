"""`python -m edgeconv.bench`: the child process that measures one job (see child.py)."""

from edgeconv.bench.child import main

main()
