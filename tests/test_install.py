"""Ready for a real server: the wheel installs into a clean virtualenv and runs there
(templates and data included), the container and compose files hold together, shell
completion works (issue 20)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

ROOT = Path(__file__).parent.parent
SAMPLES = ROOT / "sample_logs"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    # Built from a copy: the checkout's build/ and egg-info stay as they are.
    src = build / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", ".demo", "bench", "*.duckdb*", "__pycache__", "*.egg-info", "build", "dist"))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(src)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (found,) = out.glob("logalyse-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_installs_and_runs_in_a_clean_virtualenv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    bin_dir = env_dir / "bin"
    # The wheel alone, from this interpreter's pip; its dependencies from the dev venv's
    # site-packages (no network here), after the wheel's own files on the path.
    purelib = Path(
        subprocess.run(
            [
                str(bin_dir / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(purelib), str(wheel)],
        check=True,
    )  # fmt: skip
    (purelib / "zz-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    scripts = purelib / "bin"  # --target puts console scripts here
    logalyse = scripts / "logalyse"
    assert logalyse.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGALYSE_")}
    env["PYTHONPATH"] = ""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "python"), str(logalyse), *args],
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
        )

    # It is the installed copy that runs, not the checkout.
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import logalyse; print(logalyse.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    ).stdout  # fmt: skip
    assert where.startswith(str(purelib)), where
    assert run("--version").stdout.startswith("logalyse, version ")
    db = str(tmp_path / "s.duckdb")
    logs = sorted(str(p) for p in SAMPLES.glob("access.log*"))
    imported = run("--db", db, "import", *logs)
    assert "imported 9,000 lines from 3 inputs" in imported.stderr
    page = run("--db", db, "report", "dashboard", "-o", str(tmp_path / "index.html"))
    assert page.returncode == 0
    html = (tmp_path / "index.html").read_text()
    assert "Content-Security-Policy" in html and "Top pages" in html  # templates shipped
    assert "internal" in run("--db", db, "report", "referrers", "--json").stdout  # data shipped


def test_the_container_runs_logalyse_as_its_own_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and all("python:3.12-slim" in s for s in stages)
    final = dockerfile.split(stages[1], 1)[1]
    assert "USER logalyse" in final and 'ENTRYPOINT ["logalyse"]' in final
    assert "pip install --no-cache-dir /tmp/dist/*.whl" in final
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_the_compose_example_tails_nginx_into_its_own_volumes() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    nginx, logalyse = compose["services"]["nginx"], compose["services"]["logalyse"]
    assert set(compose["volumes"]) == {"logs", "data", "stats"}
    assert "logs:/var/log/nginx/site" in nginx["volumes"]
    assert "logs:/var/log/nginx/site:ro" in logalyse["volumes"]  # it only reads the log
    assert "data:/var/lib/logalyse" in logalyse["volumes"]
    command = logalyse["command"]
    assert command[:2] == ["tail", "/var/log/nginx/site/access.log"]
    dashboard = command[command.index("--dashboard") + 1]
    assert any(
        v.startswith("stats:") and dashboard.startswith(v.split(":")[1])
        for v in logalyse["volumes"]
    )
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "access_log /var/log/nginx/site/access.log combined;" in conf
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker")
def test_the_image_builds() -> None:
    if subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.skip("docker is installed but its daemon is not running")
    subprocess.run(["docker", "build", "-q", "-t", "logalyse-test", str(ROOT)], check=True)
    out = subprocess.run(
        ["docker", "run", "--rm", "logalyse-test", "--version"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.startswith("logalyse, version")


@pytest.mark.parametrize(
    "shell, marker",
    [
        ("bash", "complete -o"),
        ("zsh", "compdef"),
        ("fish", "complete --no-files --command logalyse"),
    ],
)
def test_shell_completion(shell: str, marker: str) -> None:
    env = {**os.environ, "_LOGALYSE_COMPLETE": f"{shell}_source"}
    out = subprocess.run(
        [sys.executable, "-m", "logalyse"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert marker in out
    # And it completes: the commands after `logalyse `.
    words = subprocess.run(
        [sys.executable, "-m", "logalyse"],
        env={**os.environ, "_LOGALYSE_COMPLETE": "bash_complete", "COMP_WORDS": "logalyse re", "COMP_CWORD": "1"},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "report" in words
