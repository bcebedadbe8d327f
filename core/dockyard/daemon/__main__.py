"""`python -m dockyard.daemon`: the same as the `dockyardd` command."""

from dockyard.daemon.process import main

main()
