"""Driver contracts: one `typing.Protocol` per driver kind, plus optional capabilities.

The engine's managers talk to drivers only through these protocols, never through a
concrete class: that is what lets a third-party package replace any driver. Optional
capabilities are separate protocols checked with `isinstance` (they are
`runtime_checkable`), the way moby's graph drivers may or may not be DiffGetters.
Part of the plugin surface (`dockyard.plugin`): drivers and managers both import it.
"""
