"""Helpers for the reliability tests (issue 3, tests/test_reliability_*.py): run a script the way a user does,
with every network connection refused and recorded, and check that a failure is one clear paragraph and
that no output file was harmed."""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional

ROOT = Path(__file__).resolve().parent.parent

# Put first on the scripts' PYTHONPATH: refuses (and records) every connection and name lookup, so a test
# sees any attempt to reach the hub even where it would have failed quietly.
NETWORK_GUARD = '''
import os, socket
_log = os.environ.get("RELIABILITY_NET_LOG")
def _refuse(what):
    if _log:
        with open(_log, "a") as f:
            f.write(what + "\\n")
    raise OSError("network access refused by the reliability tests: " + what)
_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse("connect %r" % (address,))
    return _connect(self, address)
def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse("connect_ex %r" % (address,))
    return _connect_ex(self, address)
def getaddrinfo(host, *args, **kwargs):
    _refuse("getaddrinfo %r" % (host,))
socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''
_guard_dir: Optional[Path] = None


def script_env(net_log: Path) -> Dict[str, str]:
    """The environment of a script under test: the hub unreachable, and HF_HUB_OFFLINE *not* set by us,
    so that only the project's own code keeps it offline."""
    global _guard_dir
    if _guard_dir is None:
        _guard_dir = Path(tempfile.mkdtemp(prefix="reliability-guard-"))
        atexit.register(shutil.rmtree, str(_guard_dir), True)
        (_guard_dir / "sitecustomize.py").write_text(NETWORK_GUARD)
    env = dict(os.environ)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(name, None)
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(_guard_dir)] + [p for p in [env.get("PYTHONPATH")] if p]),
        HF_ENDPOINT="http://127.0.0.1:9",          # nothing listens there
        RELIABILITY_NET_LOG=str(net_log),
        TQDM_MININTERVAL="0.2",
    )
    # One thread each: the CPU is shared, and oversubscribed OpenMP threads make the tiny model 40x slower.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class Run:
    """A script run to its end: returncode, stdout, stderr, seconds, and the network attempts it made."""

    def __init__(self, script: str, returncode: int, stdout: str, stderr: str, seconds: float, network: str):
        self.script, self.returncode, self.stdout, self.stderr = script, returncode, stdout, stderr
        self.seconds, self.network = seconds, network

    def __repr__(self) -> str:
        return (f"{self.script} exited {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}")


def _net_log() -> Path:
    fd, name = tempfile.mkstemp(prefix="reliability-net-", suffix=".log")
    os.close(fd)
    return Path(name)


def run(script: str, *args: str, timeout: float = 600, cwd: Path = ROOT) -> Run:
    """Run `python <script> args...` as a user does; asserts that it tried no network access."""
    log = _net_log()
    started = time.time()
    result = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=script_env(log), text=True,
                            capture_output=True, timeout=timeout)
    finished = Run(script, result.returncode, result.stdout, result.stderr, time.time() - started, log.read_text())
    log.unlink()
    assert not finished.network, f"{script} tried to reach the network: {finished.network}\n{finished!r}"
    return finished


def _as_from_a_terminal() -> None:
    """In the child, before Python starts: SIGINT at its default, as in a terminal. A shell without job control
    (`pytest ... &`, `nohup`, some CI runners) starts background jobs with SIGINT ignored, Python then keeps it
    ignored, and the Ctrl-C tests would send a signal nobody hears."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Started:
    """A script running in the background (for kill and Ctrl-C tests), its output going to files."""

    def __init__(self, script: str, *args: str, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.script = script
        self.out_path, self.err_path, self.log = folder / f"{script}.out", folder / f"{script}.err", _net_log()
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen([sys.executable, str(ROOT / script), *args], cwd=ROOT,
                                            env=script_env(self.log), stdout=out, stderr=err, text=True,
                                            preexec_fn=_as_from_a_terminal)
        self.started = time.time()

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")

    def wait_for(self, condition, what: str, timeout: float = 300) -> None:
        """Poll until condition() holds; fails if the script ends first or the time runs out."""
        deadline = time.time() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.script} ended (exit {self.process.returncode}) before {what}\n"
                                     f"{self.output()[-4000:]}")
            if time.time() > deadline:
                self.process.kill()
                raise AssertionError(f"{self.script}: no {what} after {timeout} s\n{self.output()[-4000:]}")
            time.sleep(0.05)

    def signal(self, signum: int, timeout: float = 60) -> Run:
        """Send signum and wait for the end; Run.seconds is the time from the signal to the exit, and
        Run.said_seconds the time until the script's "interrupted" line (what a user waits for: the
        interpreter's own teardown after it takes seconds more on a busy machine)."""
        sent = time.time()
        self.process.send_signal(signum)
        said = None
        while self.process.poll() is None:
            if said is None and ": interrupted" in self.err_path.read_text(errors="replace"):
                said = time.time() - sent
            if time.time() - sent > timeout:
                self.process.kill()
                raise AssertionError(f"{self.script} still running {timeout} s after signal {signum}")
            time.sleep(0.05)
        finished = Run(self.script, self.process.returncode, self.out_path.read_text(errors="replace"),
                       self.err_path.read_text(errors="replace"), time.time() - sent, self.log.read_text())
        finished.said_seconds = time.time() - sent if said is None else said
        self.log.unlink()
        assert not finished.network, f"{self.script} tried to reach the network: {finished.network}"
        return finished

    def kill(self) -> Run:
        return self.signal(signal.SIGKILL)


def error_message(result: Run, *needles: str, code: int = 2) -> str:
    """The one-paragraph error a failed script printed, checked: exit code, no stack trace, the paragraph last
    on stderr, and each needle (file name, line, what to do) in it."""
    assert result.returncode == code, repr(result)
    assert "Traceback" not in result.stderr, repr(result)
    marker = f"{result.script}: error: "
    assert marker in result.stderr, repr(result)
    message = result.stderr.rsplit(marker, 1)[1].strip()
    assert message and "\n" not in message, f"not one paragraph: {message!r}"
    for needle in needles:
        assert needle in message, f"{needle!r} not in the message: {message}"
    return message


def snapshot(folder: Path) -> Dict[str, bytes]:
    """Every file under folder (relative path -> bytes), to prove later that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_unchanged(folder: Path, before: Dict[str, bytes]) -> None:
    after = snapshot(folder)
    assert set(after) == set(before), f"files added/removed: {sorted(set(after) ^ set(before))}"
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"files changed: {changed}"


def process(data: Path, pre_data: Path, *args: str) -> Run:
    """data_process.py on data into pre_data, with a 50-row holdout (small test files)."""
    return run("data_process.py", "--data_dir", str(data), "--pre_data_dir", str(pre_data), "--holdout_size", "50", *args)


def fails_and_keeps(data: Path, pre_data: Path, *args: str, needles=()) -> str:
    """Run data_process, expect the error with needles in it, and check pre_data is untouched."""
    before = snapshot(pre_data)
    message = error_message(process(data, pre_data, *args), *needles)
    assert_unchanged(pre_data, before)
    return message
