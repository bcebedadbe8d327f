"""The core's one build step beyond setuptools' defaults: BuildKit's protobuf and gRPC
modules, generated from the vendored .proto files when the package is built.

pyproject.toml holds everything else. The .proto files (BuildKit's and fsutil's, as
published) live in core/dockyard/builder/buildkit/proto/; grpcio-tools compiles them into
core/dockyard/builder/buildkit/wire/, whose imports are made relative so the modules
belong to that package. Without grpcio-tools the step is skipped and the daemon serves
the classic builder only (its probe says why).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE / "core" / "dockyard" / "builder" / "buildkit" / "proto"
WIRE = HERE / "core" / "dockyard" / "builder" / "buildkit" / "wire"
PROTO_PACKAGE = "dockyard_buildkit"  # the directory the .proto files import each other by


def generate_wire_modules() -> bool:
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        print("setup.py: grpcio-tools is not installed: BuildKit's API is left out", file=sys.stderr)
        return False
    import google.rpc.status_pb2  # googleapis-common-protos: google/rpc/status.proto

    includes = [str(PROTO_ROOT), str(Path(grpc_tools.__file__).parent / "_proto"),
                str(Path(google.rpc.status_pb2.__file__).parents[2])]
    protos = sorted(str(p) for p in (PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))
    with tempfile.TemporaryDirectory(prefix="dockyard-protoc-") as out:
        arguments = ["protoc", *(f"-I{path}" for path in includes), f"--python_out={out}",
                     f"--grpc_python_out={out}", *protos]
        if protoc.main(arguments) != 0:
            raise SystemExit("setup.py: protoc failed on BuildKit's .proto files")
        for module in sorted((Path(out) / PROTO_PACKAGE).glob("*.py")):
            text = re.sub(rf"^from {PROTO_PACKAGE} import ", "from . import ", module.read_text(), flags=re.M)
            target = WIRE / module.name
            if not target.exists() or target.read_text() != text:
                target.write_text(text)
    return True


class BuildPyWithWire(build_py):
    def run(self) -> None:
        generate_wire_modules()
        super().run()


setup(cmdclass={"build_py": BuildPyWithWire})
