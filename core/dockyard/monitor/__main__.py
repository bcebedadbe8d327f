"""`python -m dockyard.monitor STATE_DIR` runs one monitor in the foreground;
`python -m dockyard.monitor --zygote SOCKET` runs the zygote that forks them."""

import sys

from dockyard.monitor.process import Monitor
from dockyard.monitor.zygote import serve_zygote

if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
    serve_zygote(sys.argv[2])
elif len(sys.argv) == 2:
    sys.exit(Monitor(sys.argv[1]).run())
else:
    sys.exit("usage: python -m dockyard.monitor STATE_DIR | --zygote SOCKET")
