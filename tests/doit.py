"""Running the repository's dodo.py with real doit, against the test database."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection

REPO = Path(__file__).resolve().parent.parent
DOIT = str(Path(sys.executable).with_name("doit"))


#: The chart and number tasks of the demo's users generator (they read ``auth.User``).
USERS = {
    "users.signups_per_month",
    "users.users_over_time",
    "users.signup_hours",
    "users.account_status",
    "users.total_users",
    "users.new_users_30_days",
}


def database_url() -> str:
    """The URL of the test database, for a process started by a test."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    tasks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def executed(self) -> set[str]:
        """Tasks whose actions ran (successfully or not)."""
        return {t["name"] for t in self.tasks if t["started"] is not None}

    @property
    def charts(self) -> set[str]:
        """Executed chart and number tasks (named ``<generator>.<name>``)."""
        return {name for name in self.executed if "." in name and ":" not in name}

    def task(self, name: str) -> dict[str, Any]:
        return next(t for t in self.tasks if t["name"] == name)


class Build:
    """One project directory's worth of doit state: outputs, state and generators."""

    def __init__(self, tmp_path: Path, generators: list[str] | None = None) -> None:
        self.out = tmp_path / "charts"
        self.state = tmp_path / "state"
        self.gens = tmp_path / "gens"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "CHARTBUILD_OUTPUT_DIR": str(self.out),
            "CHARTBUILD_STATE_DIR": str(self.state),
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        }
        if generators is not None:
            self.env["CHARTBUILD_TEST_GENERATORS"] = ",".join(generators)

    def copy_demo_generators(self) -> None:
        """Use copies of the demo's generators (as module ``gens.<name>``) that tests may edit."""
        shutil.copytree(REPO / "generators", self.gens)
        self.env["CHARTBUILD_TEST_GENERATORS"] = "gens.users,gens.shop"

    def start(self, *args: str, json_report: bool = True) -> subprocess.Popen[str]:
        """The ``doit`` command, started in a process of its own."""
        command = self.command(*args, json_report=json_report)
        if args and args[0] in ("list", "info", "clean", "forget"):
            command[1:1] = ["-f", str(REPO / "dodo.py")]
        else:
            command[:0] = ["-f", str(REPO / "dodo.py")]
        return subprocess.Popen(
            [DOIT, *command],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, *args: str, json_report: bool = True, timeout: float = 300, process: bool = False
    ) -> Result:
        """A run of doit, in this process (as ``doit auto`` and the runner build), or with
        ``process=True`` as the ``doit`` command (for what the process boundary is about:
        its exit, signals, two builds at once)."""
        if not process:
            assert self.env.get("DATABASE_URL") == database_url(), "another database: process=True"
            return self.run_here(*args, json_report=json_report)
        started = self.start(*args, json_report=json_report)
        stdout, stderr = started.communicate(timeout=timeout)
        return self.result(started, stdout, stderr, json_report)

    def run_here(self, *args: str, json_report: bool = True) -> Result:
        """doit run in this process, with the settings its environment would give the
        ``doit`` command (and its generators importable), its output captured."""
        from django.conf import settings
        from django.test.utils import override_settings
        from doit.doit_cmd import DoitMain

        from chartbuild.build import plan, runner
        from chartbuild.build.session import Session
        from tests.environment import settings_from

        stdout, stderr = io.StringIO(), io.StringIO()
        # doit's reporters write to its --output-file (sys.stdout as doit was imported)
        reported = self.state.parent / "doit-output.txt"
        reported.unlink(missing_ok=True)
        command = self.command(*args, json_report=json_report)
        if not (args and args[0] in ("list", "info", "clean", "forget")):
            command[:0] = ["--output-file", str(reported)]
        said = logging.StreamHandler(stderr)
        said.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("chartbuild")
        with (
            override_settings(**settings_from(self.env, settings.TEMPLATES)),
            self.environment(),
            self.importable(),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            # of these settings' state and output folders; plain as the command would be
            build = Session(one_off=False, plain=plan.plain_command(["doit", *command]))
            logger.addHandler(said)
            try:
                with build.active():
                    code = DoitMain(runner.default_loader()).run(command) or 0
            finally:
                logger.removeHandler(said)
                build.release()
        if reported.exists():
            stdout.write(reported.read_text())
        result = Result(code, stdout.getvalue(), stderr.getvalue())
        if json_report and result.stdout.strip().startswith("{"):
            result.tasks = json.loads(result.stdout)["tasks"]
        return result

    @staticmethod
    def command(*args: str, json_report: bool = True) -> list[str]:
        """doit's arguments for a run of ``args`` (a command first: ``list``, ``clean``...)."""
        if args and args[0] in ("list", "info", "clean", "forget"):
            return [args[0], *args[1:]]
        return [*(["--reporter", "json"] if json_report else []), *args]

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """The test knobs a generator may read from the environment itself, set meanwhile."""
        knobs = {k: v for k, v in self.env.items() if k.startswith("CHARTBUILD_TEST_")}
        before = {k: os.environ.get(k) for k in knobs}
        os.environ.update(knobs)
        try:
            yield
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    @contextlib.contextmanager
    def importable(self) -> Iterator[None]:
        """The build's own generators (``gens``, copies a test may edit) importable, fresh."""
        root = str(self.gens.parent)
        for module in [m for m in sys.modules if m == "gens" or m.startswith("gens.")]:
            del sys.modules[module]  # another test's copies
        sys.path.insert(0, root)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(root)

    @staticmethod
    def result(
        process: subprocess.Popen[str], stdout: str, stderr: str, json_report: bool
    ) -> Result:
        result = Result(process.returncode, stdout, stderr)
        if json_report and stdout.strip().startswith("{"):
            result.tasks = json.loads(stdout)["tasks"]
        return result

    def break_function(self, generator: str, function: str, statement: str) -> None:
        """Make ``function`` of the copied generator run ``statement`` first (e.g. raise)."""
        source = self.gens / f"{generator}.py"
        text = source.read_text()
        pattern = rf'(def {function}\(.*?"""\n)'
        broken = re.sub(pattern, rf"\g<1>    {statement}\n", text, count=1, flags=re.S)
        assert broken != text, f"no documented function {function} in {source}"
        source.write_text(broken)

    def manifest(self) -> list[dict[str, Any]]:
        return json.loads((self.out / "manifest.json").read_text())["entries"]


def seed() -> None:
    """A little data for the demo's generators: three users, a product, three orders."""
    from django.contrib.auth.models import User

    from demo.shop.models import Order, Product

    product = Product.objects.create(name="Dune", category="books", price="9.50")
    for i in range(3):
        user = User.objects.create(username=f"user{i}")
        Order.objects.create(
            product=product, customer=user, status="paid", quantity=1, amount="9.50"
        )


class Auto:
    """A running `doit auto` (or another builder), its output lines collected as they come."""

    def __init__(self, build: Build, command: list[str] | None = None) -> None:
        """``doit auto``, or another long-lived ``command`` run in ``build``'s environment."""
        self.build = build
        self.process = subprocess.Popen(
            command or [DOIT, "-f", str(REPO / "dodo.py"), "auto"],
            env=build.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s; got {self.seen}")

    def stop(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)
        return time.monotonic() - started


def building(build: Build) -> bool:
    """Whether a build holds ``build``'s build lock right now."""
    if not (build.state / "build.lock").exists():
        return False
    with open(build.state / "build.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def wait_until(condition, timeout: float) -> float:
    """Seconds until ``condition()`` holds; an AssertionError after ``timeout`` seconds."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started
