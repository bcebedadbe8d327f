"""Networks: the manager of network records and endpoints, address management (IPAM),
published host ports, and the embedded DNS resolver at 127.0.0.11.

The network manager owns what the user asked for (records, addresses, names); network
drivers own the kernel objects. Only the engine, the API and the container manager
import this package.
"""
