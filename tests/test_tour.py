"""The README's tour as a test: every `netpilot` command in its sh blocks runs, in order, on shipped files, with
the exit code its comment promises (0 unless the comment opens with `exit N`)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from conftest import listening

ROOT = Path(__file__).resolve().parents[1]


def tour_commands(readme: str) -> list[tuple[int, str, int]]:
    """(README line, command, expected exit code) of every `netpilot` command in the README's sh blocks; `sudo`
    lines (the FRR lab, tests/test_lab.py) and `make` lines are not the tour's."""
    commands = []
    in_block, pending, start = False, "", 0
    for number, line in enumerate(readme.splitlines(), start=1):
        if line.startswith("```"):
            in_block = line.strip() == "```sh"
            continue
        if not in_block:
            continue
        if not pending:
            start = number
        pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        text, pending = pending.strip(), ""
        if not text.startswith("netpilot "):
            continue
        command, _, comment = text.partition(" #")
        expected = re.match(r"\s*exit (\d+)", comment)  # a comment that opens with "exit N"
        commands.append((start, command.strip(), int(expected.group(1)) if expected else 0))
    return commands


def test_the_readme_lists_the_tour():
    commands = tour_commands((ROOT / "README.md").read_text())
    assert len(commands) >= 30
    assert any(rc == 1 for _, _, rc in commands) and any(rc == 2 for _, _, rc in commands)
    for number, command, _ in commands:
        for token in shlex.split(command):
            if token.startswith(("examples/", "src/", "tests/")):
                assert (ROOT / token).exists(), f"README.md:{number}: {token} is not shipped"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_and_scrape(argv: list[str], cwd: Path, port: int) -> str:
    """Run a command that serves /metrics until stopped: scrape it once, then stop it."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120  # generous: only a hung server takes this long
        while time.monotonic() < deadline:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                if process.poll() is not None:
                    raise AssertionError(process.stdout.read()) from None
                time.sleep(0.3)
        raise AssertionError("the exporter never answered")
    finally:
        process.terminate()
        process.wait(30)


def test_the_tour_runs(tmp_path, shared_data):
    """Each command from a working directory that holds the checkout's shipped folders, and `../shared/data`
    beside it as the README expects."""
    work = tmp_path / "checkout"
    work.mkdir()
    for folder in ("examples", "src", "tests"):
        (work / folder).symlink_to(ROOT / folder)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data)
    schema = f"tour_{uuid.uuid4().hex[:8]}"
    change_id = None
    ran = []
    try:
        for number, command, expected in tour_commands((ROOT / "README.md").read_text()):
            where = f"README.md:{number}: {command}"
            if ("postgresql://" in command and not listening(5432)) or ("nats://" in command and not listening(4222)):
                continue  # a service this machine lacks (CI starts both)
            command = command.replace("postgresql://postgres@127.0.0.1/test",
                                      f"postgresql://postgres@127.0.0.1/test?schema={schema}")
            if "<id>" in command:
                assert change_id, f"{where}: no change proposed before it"
                command = command.replace("<id>", change_id)
            argv = [sys.executable, "-m", "netpilot.cli", *shlex.split(command)[1:]]
            if " export " in f" {command} ":
                port = _free_port()
                argv[argv.index("--port") + 1] = str(port)
                assert "netpilot_" in _serve_and_scrape(argv, work, port), where
                ran.append(command)
                continue
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600,
                                  env=os.environ | {"COLUMNS": "200"})
            output = done.stdout + done.stderr
            assert done.returncode == expected, f"{where}: exit {done.returncode}, expected {expected}\n{output}"
            assert "Traceback" not in output and "internal error" not in output, f"{where}\n{output}"
            if expected == 2:
                assert "error:" in output, f"{where}: no located error\n{output}"
            proposed = re.search(r"^change (\S+): (verified|approved)", done.stdout, re.MULTILINE)
            if " change propose " in f" {command} " and proposed:
                change_id = proposed.group(1)
            ran.append(command)
    finally:
        if listening(5432):
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1/test", autocommit=True) as db:
                db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    assert change_id, "the tour's proposal was not verified"
    assert (work / "netpilot.duckdb").exists()  # duckdb:/// is relative: the store is in the working directory
    assert len(ran) >= 28
