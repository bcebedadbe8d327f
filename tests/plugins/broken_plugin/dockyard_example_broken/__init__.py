"""A plugin whose import fails, as one with a missing dependency would (a test fixture)."""

import dockyard_example_missing_dependency  # noqa: F401  (does not exist, on purpose)
