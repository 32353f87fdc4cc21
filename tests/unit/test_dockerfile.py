"""The Dockerfile's promises that building and running it cannot show, checked by parsing it as Docker does.

That the image builds, runs as uid 10001 read-only with no capabilities, answers its HEALTHCHECK, serves /metrics and
stops on SIGTERM is proved by an engine: `make image` and tests/e2e/test_image.py. A build succeeds just as well with
an unpinned base, a name-only user that Kubernetes' runAsNonRoot cannot check, a liveness endpoint a kubelet cannot
reach, stale EXPOSE lines, a secret in ENV or a build context that ships .venv and .git; those are checked here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from dockerfile_parse import DockerfileParser

from multisite_operator.cli import parser

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from harness.operator_process import OperatorProcess

PINNED = re.compile(r"^[\w.\-/]+:(?P<tag>[\w.\-]+)@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(ROOT / "Dockerfile"))


def instructions(df: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in df.structure if i["instruction"] == name]


def final_stage(df: DockerfileParser) -> list[dict]:
    start = max(n for n, i in enumerate(df.structure) if i["instruction"] == "FROM")
    return df.structure[start:]


def exec_form(value: str) -> list[str]:
    """ENTRYPOINT/CMD must be JSON arrays: the shell form would make `sh` PID 1 and swallow SIGTERM."""
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed), value
    return parsed


def run_command(df: DockerfileParser) -> list[str]:
    stage = final_stage(df)
    entry = [exec_form(i["value"]) for i in stage if i["instruction"] == "ENTRYPOINT"]
    cmd = [exec_form(i["value"]) for i in stage if i["instruction"] == "CMD"]
    assert len(entry) == 1 and len(cmd) == 1
    return entry[0] + cmd[0]


def test_every_base_image_is_pinned_by_digest_to_the_supported_python(dockerfile):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    bases = [b for b in dockerfile.parent_images]
    assert bases, "no FROM"
    for base in bases:  # ARG substituted by the parser, as docker does
        match = PINNED.match(base)
        assert match, f"{base}: pin the base with a tag and its @sha256 digest"
        assert match["tag"] != "latest"
        version = re.match(r"(\d+\.\d+)", match["tag"])
        assert version and version[1] == minimum, f"{base}: the package is tested on Python {minimum}"
        assert "slim" in match["tag"], "a small base: the operator needs no compiler or system packages"


def test_runs_as_a_numeric_non_root_user(dockerfile):
    users = [i["value"] for i in final_stage(dockerfile) if i["instruction"] == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes' runAsNonRoot can check it"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    deployment = (ROOT / "deploy" / "deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in deployment, "the Deployment runs the image's user"


def test_entry_point_is_the_command_the_tests_run(dockerfile):
    """`multisite-operator run` in the image is `python -m multisite_operator.cli run` of tests/harness/operator_process.py."""
    command = run_command(dockerfile)
    assert command[:2] == ["multisite-operator", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["multisite-operator"] == "multisite_operator.cli:main"
    tested = OperatorProcess("kubeconfig", ["ns"], Path("log")).command
    assert tested[1:4] == ["-m", "multisite_operator.cli", "run"]  # cli's __main__ calls the same main()
    args = parser().parse_args(command[1:])  # the image's defaults are options `run` accepts
    assert args.func.__name__ == "cmd_run"
    assert args.namespace == [], "the image watches every namespace by default"
    assert args.log_format == "json" and args.metrics_port and args.liveness


def test_liveness_listens_for_the_kubelet_and_exposed_ports_match(dockerfile):
    """The HEALTHCHECK itself is run by tests/e2e/test_image.py; a kubelet probes from outside the container."""
    args = parser().parse_args(run_command(dockerfile)[1:])
    liveness = urlparse(args.liveness)
    assert liveness.hostname == "0.0.0.0", "reachable by the kubelet's probe, not only from inside the pod"
    exposed = {int(p) for value in instructions(dockerfile, "EXPOSE") for p in value.split()}
    assert exposed == {liveness.port, args.metrics_port}


def test_no_shell_form_or_secrets_baked_in(dockerfile):
    for key in dockerfile.envs:
        assert not re.search(r"TOKEN|PASSWORD|SECRET|KUBECONFIG", key), key
    assert not any(i["instruction"] == "ADD" for i in dockerfile.structure), "COPY, never ADD (no remote fetches)"


# --- the build context --------------------------------------------------------------------------------------------
def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as Docker reads it: in order, '!' re-includes, the last matching line wins."""
    out = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        rx = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        out.append((negate, re.compile(rx + "$")))
    return out


def in_context(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    included = True
    for negate, rx in patterns:  # a pattern matching a parent directory matches what is inside it
        if any(rx.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            included = negate
    return included


def context_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    patterns = ignore_patterns()
    return sorted(p for p in listed if (ROOT / p).is_file() and in_context(p, patterns))


def test_build_context_is_only_what_the_image_needs():
    patterns = ignore_patterns()
    files = context_files()
    assert "pyproject.toml" in files and "README.md" in files
    assert "operator/multisite_operator/cli.py" in files
    for heavy in (".venv/bin/python", ".cache/controlplane/kubeconfig", ".git/HEAD", "tests/conftest.py",
                  "operator/multisite_operator/__pycache__/cli.cpython-311.pyc"):
        assert not in_context(heavy, patterns), f"{heavy} would be sent to the builder"
    copied = {v.split()[0] for v in instructions(DockerfileParser(str(ROOT / "Dockerfile")), "COPY")
              if not v.startswith("--from")}
    for source in copied:  # every COPY source is in the context
        assert any(f == source or f.startswith(source.rstrip("/") + "/") for f in files), source


def test_the_build_harness_needs_stay_out_of_the_dockerfile():
    """runc, ulimits and the host CA bundle are needs of sandboxed build machines (tests/image/), not of the image."""
    text = (ROOT / "Dockerfile").read_text()
    for harness_only in ("ca-certificates.crt", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "trusted-host",
                         "ulimit", "runc"):
        assert harness_only not in text, f"{harness_only}: belongs to tests/image/build.sh, not to the image"
    conf = (ROOT / "tests" / "image" / "containers.conf").read_text()
    settings = {line.split("=")[0].strip() for line in conf.splitlines()
                if line.strip() and not line.startswith(("#", "["))}
    assert settings == {"default_ulimits", "runtime"}, "the engine config only says how this machine runs containers"
