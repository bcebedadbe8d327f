"""Networks: the manager, address management, name resolution."""
