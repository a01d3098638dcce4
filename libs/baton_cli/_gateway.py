"""The HTTP/JSON gateway: a real Envoy run from deploy/envoy/envoy.yaml.

`deploy/envoy/envoy.yaml` is the one gateway config. This module only
rewrites its addresses (listener, admin, upstream clusters) and the path of
the descriptor set, so `baton up`, the tests, docker-compose and Kubernetes
all run the same routes and transcoder options.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._process import ChildProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "deploy" / "envoy" / "envoy.yaml"
# The Envoy clusters: one per service, named after it.
UPSTREAMS = ("registry", "orchestrator", "sessions")
_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"


class GatewayError(RuntimeError):
    """The gateway cannot be configured or started."""


def find_binary(name: str) -> str:
    """`name` next to this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise GatewayError(f"{name} not found next to {sys.executable} or on PATH "
                           "(`make install` installs it into .venv/bin)")
    return found


def build_descriptor(out: Path, root: Path = REPO_ROOT) -> Path:
    """Runs `buf build` on the repository's proto module, writing `out`."""
    if not (root / "buf.yaml").exists():
        raise GatewayError(f"no buf.yaml in {root}: the gateway needs a Baton checkout")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([find_binary("buf"), "build", "-o", str(out)], cwd=root,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GatewayError(f"buf build failed: {done.stderr.strip()}")
    return out


def _split(address: str) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise GatewayError(f"bad address {address!r}: expected host:port")
    return {"address": host, "port_value": int(port)}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    if not path.exists():
        raise GatewayError(f"{path} not found: the gateway needs a Baton checkout")
    return yaml.safe_load(path.read_text())


def http_filter_config(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The typed_config of the HTTP filter named `name` inside an Envoy config."""
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for net_filter in chain["filters"]:
                for http_filter in net_filter["typed_config"].get("http_filters", []):
                    if http_filter["name"] == name:
                        return http_filter["typed_config"]
    raise GatewayError(f"no {name} filter in the Envoy config")


def transcoder_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The grpc_json_transcoder filter's typed_config inside an Envoy config."""
    return http_filter_config(config, _TRANSCODER)


@dataclass(frozen=True)
class GatewaySettings:
    """Where the gateway listens and where the three services are."""

    listen: str
    upstreams: Mapping[str, str]
    descriptor: str
    admin: str = "127.0.0.1:0"


def render(settings: GatewaySettings, template: Mapping[str, Any] | None = None) -> dict:
    """The template with the addresses and descriptor path of `settings`."""
    config = dict(copy.deepcopy(template if template is not None else load_template()))
    missing = set(UPSTREAMS) - set(settings.upstreams)
    if missing:
        raise GatewayError(f"no address for {', '.join(sorted(missing))}")
    config["admin"]["address"]["socket_address"] = _split(settings.admin)
    (listener,) = config["static_resources"]["listeners"]
    listener["address"]["socket_address"] = _split(settings.listen)
    for cluster in config["static_resources"]["clusters"]:
        address = settings.upstreams[cluster["name"]]
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"] = _split(address)
    transcoder_config(config)["proto_descriptor"] = str(settings.descriptor)
    return config


class _Dumper(yaml.SafeDumper):
    # Rendered files are read by people: repeated blocks written out in
    # full, multi-line strings (an embedded envoy.yaml) as literal blocks.
    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_str(self, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _Dumper.represent_str)


def dump(config: Mapping[str, Any], header: str = "") -> str:
    return header + yaml.dump(dict(config), Dumper=_Dumper, sort_keys=False, width=100)


class Gateway(ChildProcess):
    """Envoy as a supervised child; ready when its admin /ready answers LIVE."""

    def __init__(self, settings: GatewaySettings, workdir: Path, log_path: Path,
                 template: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.template = template  # None: deploy/envoy/envoy.yaml
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "envoy.yaml"
        self.admin_path = self.workdir / "admin-address"
        super().__init__("gateway", [
            find_binary("envoy"), "-c", str(self.config_path),
            "--admin-address-path", str(self.admin_path),
            # Several Envoys may share a machine (tests, two checkouts).
            "--disable-hot-restart", "--log-level", "warning",
        ], {}, log_path)

    @property
    def url(self) -> str:
        host, _, port = self.settings.listen.rpartition(":")
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    def start(self, wait: bool = True, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(dump(render(self.settings, self.template)))
        self.admin_path.unlink(missing_ok=True)
        super().start(wait=False)
        if wait:
            self.wait_ready(timeout)

    def admin_url(self) -> str | None:
        try:
            return f"http://{self.admin_path.read_text().strip()}"
        except OSError:
            return None

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise RuntimeError(f"envoy exited with {code}:\n{self.tail(15)}")
            admin = self.admin_url()
            if admin:
                try:
                    with urllib.request.urlopen(f"{admin}/ready", timeout=1) as reply:
                        if reply.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"envoy not ready after {timeout}s:\n{self.tail(15)}")


# The gateway of deploy/compose and deploy/k8s: the same template, with the
# services found by DNS name and the descriptor mounted from a volume.
CONTAINER_DESCRIPTOR = "/etc/envoy/descriptor/descriptor.binpb"
DEPLOYMENTS = {
    "compose": GatewaySettings(
        listen="0.0.0.0:8080", admin="127.0.0.1:9901", descriptor=CONTAINER_DESCRIPTOR,
        upstreams={"registry": "registry:50051", "orchestrator": "orchestrator:50052",
                   "sessions": "sessions:50053"}),
    "k8s": GatewaySettings(
        listen="0.0.0.0:8080", admin="127.0.0.1:9901", descriptor=CONTAINER_DESCRIPTOR,
        upstreams={"registry": "baton-registry:50051",
                   "orchestrator": "baton-orchestrator:50052",
                   "sessions": "baton-sessions:50053"}),
}
_GENERATED = ("# Generated from deploy/envoy/envoy.yaml by `make deploy-configs`; do not edit.\n"
              "# The comments explaining each option are in that file.\n")


def deploy_configs() -> dict[Path, str]:
    """The gateway files of deploy/compose and deploy/k8s, as they should read."""
    compose = dump(render(DEPLOYMENTS["compose"]), _GENERATED)
    k8s_map = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "baton-gateway-config",
                     "labels": {"app.kubernetes.io/name": "baton-gateway",
                                "app.kubernetes.io/part-of": "baton"}},
        "data": {"envoy.yaml": dump(render(DEPLOYMENTS["k8s"]))},
    }
    return {
        REPO_ROOT / "deploy" / "compose" / "envoy.yaml": compose,
        REPO_ROOT / "deploy" / "k8s" / "gateway-config.yaml": dump(k8s_map, _GENERATED),
    }


def write_deploy_configs() -> None:
    for path, text in deploy_configs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO_ROOT)}")
