#!/usr/bin/env python3
"""One entry point for a fresh machine with only Python 3.11.

    python3 dev.py serve   # virtualenv, requirements, migrations, demo clinic, Daphne on :8000
    python3 dev.py test    # the whole test suite (extra arguments go to pytest)

Uses only the standard library until the virtualenv exists. Whatever mode the
environment chooses (DATABASE_URL, REDIS_URL, ...) is passed through untouched.
"""

import hashlib
import os
import secrets
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"
VAR = ROOT / "var"


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def run(*args: str, env: dict | None = None) -> None:
    subprocess.run(args, cwd=ROOT, env=env, check=True)


def ensure_virtualenv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 is there
        sys.exit("Vaani needs Python 3.11 or newer.")
    if not PYTHON.exists():
        say("Creating the virtualenv in .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        say("Installing requirements (first run takes a minute or two)")
        run(str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(str(PYTHON), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS))
        STAMP.write_text(wanted)


def _persistent_secret(name: str, length: int) -> str:
    """A value kept in var/ so restarts keep sessions and the demo password."""
    VAR.mkdir(exist_ok=True)
    path = VAR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(length))
        path.chmod(0o600)
    return path.read_text().strip()


def serve(args: list[str]) -> None:
    ensure_virtualenv()
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("SECRET_KEY", _persistent_secret("secret-key", 48))
    env.setdefault("DEMO_PASSWORD", _persistent_secret("demo-password", 12))
    manage = [str(PYTHON), "manage.py"]
    say("Applying migrations")
    run(*manage, "migrate", "--no-input", env=env)
    if env["DEBUG"].lower() not in ("1", "true", "yes", "on"):
        run(*manage, "collectstatic", "--no-input", "--verbosity", "0", env=env)
    say("Creating the demo clinic")
    run(*manage, "seed_demo", env=env)
    port = env.get("PORT", "8000")
    host = env.get("HOST", "127.0.0.1")
    say(f"Serving on http://{host}:{port}  (API /api/v1, docs /docs, admin /admin/)  Ctrl-C stops")
    os.chdir(ROOT)
    daphne = str(VENV / "bin" / "daphne")
    os.execve(daphne, [daphne, "-b", host, "-p", port, *args, "vaani.asgi:application"], env)


def test(args: list[str]) -> None:
    ensure_virtualenv()
    os.chdir(ROOT)
    os.execv(str(PYTHON), [str(PYTHON), "-m", "pytest", *args])


COMMANDS = {"serve": serve, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
