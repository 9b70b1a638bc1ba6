#!/usr/bin/env python3
"""uwdf-bench on NBD exports (nbdkit started here on a private Unix socket,
stopped by its pid, also on failure; --exit-with-parent as a backstop):

- --ioengine=nbd with fio's --uri, and an NBD URI as --filename: mixed
  random reads and writes with --verify=crc32c, backend "nbd", no errors;
- data written by uwdf-bench is in the export's backing file;
- --ioengine=nbd without a URI, and a --uri that is not one, are refused.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import Failed, Skip, check  # noqa: E402

SIZE = 16 << 20


class Nbdkit:
    """nbdkit -f on sock, serving args; ready once its pid file exists."""

    def __init__(self, d, args):
        self.sock = os.path.join(d, "nbd.sock")
        pidfile = os.path.join(d, "nbd.pid")
        self.p = subprocess.Popen(["nbdkit", "-f", "--exit-with-parent", "-U", self.sock, "-P", pidfile] + args,
                                  stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not (os.path.exists(pidfile) and os.path.getsize(pidfile) > 0):
            if self.p.poll() is not None or time.time() > deadline:
                self.stop()
                raise Failed(f"nbdkit {args} did not start")
            time.sleep(0.01)
        self.uri = f"nbd+unix:///?socket={self.sock}"

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(timeout=10)


def need_nbd():
    if not shutil.which("nbdkit"):
        raise Skip("nbdkit is not installed")
    rc, _, err = bl.run(["--ioengine=nbd", "--uri=nbd://127.0.0.1:1/", "--rw=read", "--size=4k"])
    if "built without libnbd" in err:
        raise Skip("uwdf-bench was built without libnbd")


def check_uri_and_filename():
    need_nbd()
    with bl.TempDir() as d:
        backing = os.path.join(d, "backing")
        with open(backing, "wb") as f:
            f.truncate(SIZE)
        srv = Nbdkit(d, ["file", f"file={backing}"])
        try:
            for how in (["--ioengine=nbd", f"--uri={srv.uri}"], [f"--filename={srv.uri}"]):
                r = bl.run_json(["--name=n"] + how + ["--rw=randrw", "--bs=4k", "--iodepth=8", "--number_ios=2000",
                                                      "--verify=crc32c", "--size=4m"])
                j = r["jobs"][0]
                check(j["error"] == 0, f"{how}: error {j['error']}")
                check(j["read"]["total_ios"] > 0 and j["write"]["total_ios"] > 0, f"{how}: did not mix")
                check(j.get("backend", "nbd") == "nbd", f"{how}: backend {j.get('backend')}")
            r = bl.run_json(["--name=w", "--ioengine=nbd", f"--uri={srv.uri}", "--rw=write", "--bs=64k",
                             "--size=1m", "--offset=2m"])
            check(r["jobs"][0]["write"]["total_ios"] == 16, "sequential write count")
        finally:
            srv.stop()
        with open(backing, "rb") as f:
            f.seek(2 << 20)
            data = f.read(1 << 20)
        check(data.count(0) < len(data) // 2, "the writes did not reach the backing file")


def check_one_connection():
    # the export's size comes from the open target: one connection, not a
    # probe of its own before it (strace counts the connect calls)
    need_nbd()
    strace = bl.tool("strace", "strace")
    with bl.TempDir() as d:
        srv = Nbdkit(d, ["memory", "size=%d" % SIZE])
        trace = os.path.join(d, "trace")
        try:
            rc, out, err = bl.run(["--name=n", "--ioengine=nbd", f"--uri={srv.uri}", "--rw=randread", "--bs=4k",
                                   "--number_ios=100", "--output-format=json"],
                                  wrapper=(strace, "-f", "-qq", "-e", "trace=connect", "-o", trace))
        finally:
            srv.stop()
        check(rc == 0, f"exit {rc}: {err.strip()}")
        check(json.loads(out)["jobs"][0]["read"]["io_bytes"] == 100 * 4096, "not 100 reads")
        with open(trace) as f:
            n = sum(1 for line in f if "connect(" in line and srv.sock in line)
        check(n == 1, f"{n} connections to the export, not 1")


def check_refused():
    need_nbd()
    rc, _, err = bl.run(["--name=x", "--ioengine=nbd", "--rw=read", "--size=4k"])
    check(rc != 0 and "--uri" in err, f"no URI: exit {rc}: {err.strip()}")
    rc, _, err = bl.run(["--name=x", "--ioengine=nbd", "--uri=/dev/null", "--rw=read", "--size=4k"])
    check(rc != 0 and "not an NBD URI" in err, f"bad URI: exit {rc}: {err.strip()}")


if __name__ == "__main__":
    bl.main([
        ("uri_and_filename", check_uri_and_filename),
        ("refused", check_refused),
        ("one_connection", check_one_connection),
    ])
