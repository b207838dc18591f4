"""docker-compose.yml stays runnable: it pins Envoy 1.40 and every host file it mounts exists after
`make build` (the wasm, the rendered compose config, the demo JWKS, the approval service's binary,
policy and keys)."""

from __future__ import annotations

import yaml

from conftest import REPO

COMPOSE = REPO / "docker-compose.yml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_image_pins_envoy_1_40():
    envoy = load()["services"]["envoy"]
    image = envoy["image"]
    assert image.startswith("envoyproxy/envoy:v1.40."), image


def test_every_mounted_host_file_exists():
    services = load()["services"]
    mounts = services["envoy"]["volumes"] + services["warden-serve"]["volumes"]
    assert mounts, "no volumes"
    for spec in mounts:
        host, target, *mode = spec.split(":")
        if not host.startswith("."):
            continue  # a named volume
        path = (COMPOSE.parent / host).resolve()
        assert path.exists(), f"{host} (mounted at {target}) is missing: run `make build`"
        assert mode == ["ro"], f"{host} should be mounted read-only"


def test_rendered_config_matches_the_mounts():
    envoy = load()["services"]["envoy"]
    targets = {spec.split(":")[1] for spec in envoy["volumes"]}
    command = envoy["command"]
    config_target = command[command.index("-c") + 1]
    assert config_target in targets
    host_config = next(spec.split(":")[0] for spec in envoy["volumes"]
                       if spec.split(":")[1] == config_target)
    text = (COMPOSE.parent / host_config).read_text()
    # Every file the rendered config names must be one the compose file mounts (or a system file
    # of the image).
    config = yaml.safe_load(text)
    named = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "filename" and isinstance(v, str):
                    named.add(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    assert "/etc/warden/warden.wasm" in named
    system = {"/etc/ssl/certs/ca-certificates.crt"}
    assert named - system <= targets, named - system - targets
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener == {"address": "0.0.0.0", "port_value": 10000}
    # Only the names of the key variables, never a value.
    assert envoy["environment"] == ["ANTHROPIC_API_KEY", "WARDEN_APPROVALS_TOKEN",
                                    "WARDEN_APPROVALS_VERDICT_KEY"]
    approvals = next(c for c in config["static_resources"]["clusters"] if c["name"] == "warden_approvals")
    endpoint = approvals["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "warden-serve", "port_value": 8787}
    assert str(REPO) not in text, "the compose config must not name host paths"


def test_the_approval_service_reads_the_policy_its_gateway_enforces():
    serve = load()["services"]["warden-serve"]
    command = serve["command"]
    policy_target = command[command.index("--policy") + 1]
    mounts = {spec.split(":")[1]: spec.split(":")[0] for spec in serve["volumes"]}
    assert mounts[policy_target] == "./envoy/policy.yaml"
    for flag in ("--signing-key", "--gateway-token-file"):
        assert command[command.index(flag) + 1] in mounts, flag
