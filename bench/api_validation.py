"""Request validation's cost: checking a body against the Engine API types, side by side
with parsing it, and against the whole create request it guards.

The body is what the docker CLI 28 sends for `docker create busybox true` (captured from
its socket). Three things are timed in one run, alternating:
- `json.loads` of the body (what every request paid before validation);
- `parse_json` + `check_body` (what a create pays now: parse, Go's null and StrSlice
  rules, the schema check);
- a whole `POST /containers/create` + `DELETE` against a dockyardd this script starts.

    python bench/api_validation.py [--rounds 2000] [--creates 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import start_daemon, stop_daemon
from dockyard.api.validation import parse_json, route_types

CLI_CREATE_BODY = """\
{
 "Hostname": "",
 "Domainname": "",
 "User": "",
 "AttachStdin": false,
 "AttachStdout": true,
 "AttachStderr": true,
 "Tty": false,
 "OpenStdin": false,
 "StdinOnce": false,
 "Env": null,
 "Cmd": [
  "true"
 ],
 "Image": "busybox",
 "Volumes": {},
 "WorkingDir": "",
 "Entrypoint": null,
 "OnBuild": null,
 "Labels": {},
 "HostConfig": {
  "Binds": null,
  "ContainerIDFile": "",
  "LogConfig": {
   "Type": "",
   "Config": {}
  },
  "NetworkMode": "default",
  "PortBindings": {},
  "RestartPolicy": {
   "Name": "no",
   "MaximumRetryCount": 0
  },
  "AutoRemove": false,
  "VolumeDriver": "",
  "VolumesFrom": null,
  "ConsoleSize": [
   0,
   0
  ],
  "CapAdd": null,
  "CapDrop": null,
  "CgroupnsMode": "",
  "Dns": [],
  "DnsOptions": [],
  "DnsSearch": [],
  "ExtraHosts": null,
  "GroupAdd": null,
  "IpcMode": "",
  "Cgroup": "",
  "Links": null,
  "OomScoreAdj": 0,
  "PidMode": "",
  "Privileged": false,
  "PublishAllPorts": false,
  "ReadonlyRootfs": false,
  "SecurityOpt": null,
  "UTSMode": "",
  "UsernsMode": "",
  "ShmSize": 0,
  "Isolation": "",
  "CpuShares": 0,
  "Memory": 0,
  "NanoCpus": 0,
  "CgroupParent": "",
  "BlkioWeight": 0,
  "BlkioWeightDevice": [],
  "BlkioDeviceReadBps": [],
  "BlkioDeviceWriteBps": [],
  "BlkioDeviceReadIOps": [],
  "BlkioDeviceWriteIOps": [],
  "CpuPeriod": 0,
  "CpuQuota": 0,
  "CpuRealtimePeriod": 0,
  "CpuRealtimeRuntime": 0,
  "CpusetCpus": "",
  "CpusetMems": "",
  "Devices": [],
  "DeviceCgroupRules": null,
  "DeviceRequests": null,
  "MemoryReservation": 0,
  "MemorySwap": 0,
  "MemorySwappiness": -1,
  "OomKillDisable": false,
  "PidsLimit": 0,
  "Ulimits": [],
  "CpuCount": 0,
  "CpuPercent": 0,
  "IOMaximumIOps": 0,
  "IOMaximumBandwidth": 0,
  "MaskedPaths": null,
  "ReadonlyPaths": null
 },
 "NetworkingConfig": {
  "EndpointsConfig": {}
 }
}
"""


def per_call(function, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--creates", type=int, default=40)
    args = parser.parse_args()
    types = route_types("POST", "/containers/create")
    started = time.perf_counter()
    types.check_body(parse_json(CLI_CREATE_BODY))
    compile_time = time.perf_counter() - started

    parse, check = [], []
    for _ in range(10):
        parse.append(per_call(lambda: json.loads(CLI_CREATE_BODY), args.rounds // 10))
        check.append(per_call(lambda: types.check_body(parse_json(CLI_CREATE_BODY)), args.rounds // 10))

    with tempfile.TemporaryDirectory(prefix="dyval", dir="/tmp") as root:
        daemon = start_daemon(Path(root))
        try:
            api = daemon.client()
            body = json.loads(CLI_CREATE_BODY)
            creates = []
            for _ in range(args.creates):
                start = time.perf_counter()
                created = api.request("POST", "/containers/create", body=body).json()
                creates.append(time.perf_counter() - start)
                api.request("DELETE", f"/containers/{created['Id']}", {"force": 1}).read()
        finally:
            stop_daemon(daemon)

    parse_us, check_us = statistics.median(parse) * 1e6, statistics.median(check) * 1e6
    create_us = statistics.median(creates) * 1e6
    print(f"first check (compiles the create validator, once): {compile_time * 1e3:8.1f} ms")
    print(f"json.loads of the CLI's create body:               {parse_us:8.1f} us")
    print(f"parse_json + check_body:                           {check_us:8.1f} us "
          f"({check_us / parse_us:.1f}x json.loads)")
    print(f"POST /containers/create, the whole request:        {create_us:8.1f} us")
    share = (check_us - parse_us) / create_us * 100
    print(f"validation's share of a create request:            {share:8.1f} %")


if __name__ == "__main__":
    main()
