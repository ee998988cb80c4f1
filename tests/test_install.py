"""From a built wheel to a first send, outside this repository.

The path a new user takes: mailer installed from its wheel (not editable,
not this checkout) into a fresh virtual environment, then ``mailer init``,
a subscriber, ``send-issue`` to the outbox and ``preview``. It catches what
only an installed package shows: a template or page not shipped as package
data, a path that only exists in the repository.

It runs offline: the wheel is built with the setuptools already installed,
and the new environment borrows this one's dependencies through a ``.pth``
line (a folder on ``sys.path``, whose own ``.pth`` files, mailer's editable
hook among them, are not run), while mailer itself comes from the wheel.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

from .conftest import REPO

TODAY = datetime.date.today().isoformat()


def _run(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _installed_from_wheel(tmp_path: Path) -> tuple[Path, dict]:
    """A new venv with mailer from a freshly built wheel; returns its bin folder and environment."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "mailer", source / "mailer", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MAILER_"))}
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path / "wheel"), str(source), cwd=tmp_path, env=env)
    (wheel,) = (tmp_path / "wheel").glob("mailer-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel), cwd=tmp_path, env=env)
    site = Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                     cwd=tmp_path, env=env).stdout.strip())
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return venv / "bin", env


def test_a_wheel_install_makes_a_newsletter_and_sends_it(tmp_path):
    bin_dir, env = _installed_from_wheel(tmp_path)
    mailer = str(bin_dir / "mailer")
    where = _run(str(bin_dir / "python"), "-c", "import mailer; print(mailer.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(tmp_path / "venv"))

    _run(mailer, "init", "news", "--yes", "--name", "Cloud Weekly", "--sender", "weekly@example.com",
         "--unsubscribe-url", "https://example.com/unsubscribe", cwd=tmp_path, env=env)
    news = tmp_path / "news"
    assert not (news / "templates").exists()
    _run(mailer, "subscribers", "add", "you@example.com", cwd=news, env=env)
    sent = _run(mailer, "send-issue", TODAY, "--yes", cwd=news, env=env)
    assert sent.stdout.splitlines()[-1] == f"{TODAY}: 1 sent."
    (message,) = (news / "outbox" / TODAY).glob("*.eml")
    assert "Subject: Cloud Weekly, issue 1" in message.read_text(encoding="utf-8")

    preview = subprocess.Popen([mailer, "preview", "--no-open"], cwd=news, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = preview.stdout.readline()
        assert line.startswith(f"Previewing {TODAY} at http://127.0.0.1:"), line + preview.stderr.read()
        url = line.split(" at ", 1)[1].split()[0].rstrip("/")
        with urllib.request.urlopen(f"{url}/api/render", timeout=30) as answer:
            data = json.load(answer)
        assert data["error"] is None
        assert "Cloud Weekly, issue 1" in data["email"]["html"]
        with urllib.request.urlopen(f"{url}/", timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        preview.terminate()
        preview.wait(timeout=30)
