"""Helpers shared by the uwdf-bench test scripts (tests/bench/test_bench_*.py).

The scripts run from the build directory (Automake's test harness), where
./uwdf-bench is the libtool wrapper of the freshly built binary (run as
the binary behind it: compare-fio's unwrap_libtool); UWDF_BENCH overrides it. Each script is a list of named checks; it prints PASS/FAIL/SKIP
per check and exits 0, 1, or 77 when every check was skipped.
"""

import glob
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

RUN_TIMEOUT = 60  # seconds: a hung benchmark fails the check, not the suite
SRCDIR = os.environ.get("srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# bench/compare-fio, whose unwrap_libtool the checks run uwdf-bench through too
COMPARE = os.path.abspath(os.path.join(SRCDIR, "bench", "compare-fio"))


class Skip(Exception):
    """A check that cannot run here (missing privilege or tool)."""


class Failed(Exception):
    pass


def bench_path():
    path = os.environ.get("UWDF_BENCH") or os.path.join(os.getcwd(), "uwdf-bench")
    if not os.access(path, os.X_OK):
        print(f"FAIL: uwdf-bench not found at {path} (run from the build directory or set UWDF_BENCH)")
        sys.exit(1)
    return os.path.abspath(path)


BENCH = None
BENCH_ENV = {}
# UWDF_BENCH_WRAP="valgrind -q --error-exitcode=99" runs every benchmark under it.
WRAP = tuple(os.environ.get("UWDF_BENCH_WRAP", "").split())


def run(args, cwd=None, env=None, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, wrapper=()):
    """Runs uwdf-bench with args; returns (rc, stdout, stderr) as text."""
    full_env = dict(os.environ)
    # The test environment must not choose the engine behind a check's back.
    full_env.pop("UWDF_BACKEND", None)
    full_env.update(BENCH_ENV)
    if env:
        full_env.update(env)
    if wrapper:
        # A tracer wrapper (strace): LeakSanitizer cannot run under ptrace.
        full_env["ASAN_OPTIONS"] = ":".join(filter(None, [full_env.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
    p = subprocess.run(list(wrapper) + list(WRAP) + [BENCH] + list(args), cwd=cwd, env=full_env, stdin=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, text=True,
                       errors="replace")
    return p.returncode, p.stdout, p.stderr


def run_json(args, cwd=None, env=None, fmt="json"):
    """Runs with --output-format=fmt, expects exit 0 and returns the parsed report."""
    rc, out, err = run(list(args) + [f"--output-format={fmt}"], cwd=cwd, env=env)
    check(rc == 0, f"exit {rc} for {args}: {err.strip()}")
    try:
        return json.loads(out)
    except ValueError as e:
        raise Failed(f"invalid JSON from {args}: {e}\n{out[:2000]}")


def tool(name, package="fio"):
    """The path of a tool a check compares with; missing: the check skips
    with a message, except in CI (.ci/run sets CI), where it fails."""
    path = shutil.which(name)
    if path:
        return path
    msg = f"{name} is not installed (Debian: apt-get install {package})"
    if os.environ.get("CI"):
        raise Failed(msg + " in CI: quickstart's package list should have it")
    raise Skip(msg)


def fio_log_names(job_file, d):
    """Runs job_file through fio in d/fio; that directory and the names of
    the logs fio wrote there, sorted."""
    fd = os.path.join(d, "fio")
    os.mkdir(fd)
    p = subprocess.run(["fio", "--output-format=json", job_file], cwd=fd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    check(p.returncode == 0, f"fio: exit {p.returncode}: {p.stderr.strip()}")
    return fd, sorted(os.path.basename(x) for x in glob.glob(os.path.join(fd, "*.log")))


def load_script(path, name):
    """A script of bench/ (no .py suffix) as a module, for its functions."""
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def check(cond, msg):
    if not cond:
        raise Failed(msg)


class TempDir:
    """A scratch directory on a real file system (O_DIRECT works there), under
    UWDF_TEST_DIR or /var/tmp like the C suites' directories."""

    def __enter__(self):
        base = os.environ.get("UWDF_TEST_DIR") or "/var/tmp"
        self.path = tempfile.mkdtemp(prefix="uwdf-benchtest-", dir=base)
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def make_data_file(path, size, seed=1):
    """A file of size bytes of reproducible non-zero data."""
    block = bytes((i * 131 + seed) % 251 + 1 for i in range(4096))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[:min(left, len(block))])
            left -= len(block)
    return path


def strace_usable():
    """Whether uwdf-bench can run under strace here (not under
    UWDF_BENCH_WRAP: the trace would be the wrapper's)."""
    if WRAP or not shutil.which("strace"):
        return False
    try:
        return subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "true"], timeout=30,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def have_root():
    return os.geteuid() == 0


def main(checks):
    """Runs the checks [(name, fn), ...]; the exit status Automake expects."""
    global BENCH, BENCH_ENV
    BENCH, BENCH_ENV = load_script(COMPARE, "compare_fio").unwrap_libtool(bench_path())
    passed = failed = skipped = 0
    for name, fn in checks:
        try:
            fn()
        except Skip as e:
            skipped += 1
            print(f"SKIP: {name}: {e}")
        except Failed as e:
            failed += 1
            print(f"FAIL: {name}: {e}")
        except Exception:
            failed += 1
            print(f"FAIL: {name}: unexpected exception")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"PASS: {name}")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(77)
    sys.exit(0)
