"""dockyard: a Docker-style container engine with pluggable drivers.

This package is imported by every `dockyard` CLI invocation, so it stays empty on
purpose: importing it must cost nothing beyond the version string.
"""

__version__ = "0.1.0"

# The Engine API version this daemon speaks, and the oldest one it still accepts.
API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
