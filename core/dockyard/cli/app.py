"""The click command tree. Subcommands live in their own modules and load on use."""

from __future__ import annotations

import importlib

import click

from dockyard import __version__

# command name -> "module:attribute"; grows with each area (run, ps, images, ...).
COMMANDS = {
    "version": "dockyard.cli.system:version",
    "info": "dockyard.cli.system:info",
    "events": "dockyard.cli.system:events",
    "plugins": "dockyard.cli.system:plugins",
    "images": "dockyard.cli.images:images",
    "image": "dockyard.cli.images:image",
    "history": "dockyard.cli.images:history",
    "tag": "dockyard.cli.images:tag",
    "rmi": "dockyard.cli.images:rmi",
    "import": "dockyard.cli.images:import_image",
    "save": "dockyard.cli.images:save",
    "load": "dockyard.cli.images:load",
    "build": "dockyard.cli.build:build",
    "system": "dockyard.cli.system:system",
    "run": "dockyard.cli.containers:run",
    "create": "dockyard.cli.containers:create",
    "start": "dockyard.cli.containers:start",
    "stop": "dockyard.cli.containers:stop",
    "restart": "dockyard.cli.containers:restart",
    "kill": "dockyard.cli.containers:kill",
    "pause": "dockyard.cli.containers:pause",
    "unpause": "dockyard.cli.containers:unpause",
    "rm": "dockyard.cli.containers:rm",
    "wait": "dockyard.cli.containers:wait",
    "rename": "dockyard.cli.containers:rename",
    "attach": "dockyard.cli.containers:attach",
    "logs": "dockyard.cli.containers:logs",
    "exec": "dockyard.cli.containers:exec_command",
    "ps": "dockyard.cli.containers:ps",
    "top": "dockyard.cli.containers:top",
    "inspect": "dockyard.cli.containers:inspect",
    "container": "dockyard.cli.containers:container",
    "network": "dockyard.cli.networks:network",
    "port": "dockyard.cli.networks:port",
    "volume": "dockyard.cli.volumes:volume",
    "pull": "dockyard.cli.registries:pull",
    "push": "dockyard.cli.registries:push",
    "login": "dockyard.cli.registries:login",
    "logout": "dockyard.cli.registries:logout",
    "search": "dockyard.cli.registries:search",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-H", "--host", envvar="DOCKYARD_HOST", default=None,
              help="Daemon socket: unix:///path or tcp://host:port (env DOCKYARD_HOST).")
@click.version_option(__version__, "-v", "--version", prog_name="dockyard")
@click.pass_context
def cli(ctx: click.Context, host: str | None) -> None:
    """A container engine that speaks the Docker Engine API."""
    ctx.obj = {"host": host}
