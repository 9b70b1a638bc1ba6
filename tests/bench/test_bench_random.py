#!/usr/bin/env python3
"""uwdf-bench: fio's random offsets and per-I/O logs.

random_distribution (zipf, pareto, normal, zoned, zoned_abs) gives the hot-set
fractions fio's own generators give for the same parameters: both programs
run the same job with a per-I/O IOPS log (log_avg_msec=0, log_offset=1)
and the share of I/Os that hit the hottest 5, 10, 20 and 50% of the blocks
is compared. The random map (each block once per pass), norandommap
(repeats) and blockalign (offsets on its multiples, every I/O whole inside
the region, per direction) are compared the same way. Per-I/O logs have fio's names,
line format, one line per I/O and the I/Os' sizes and offsets.
"""

import collections
import glob
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

BLOCKS = 256  # a 1 MiB region of 4 KiB blocks
SAMPLES = 40000
# (distribution, tolerance of each hot-set share): binomial noise of
# 40000 draws is below 0.005; the spread of the hot ranks differs (fio
# hashes, uwdf-bench permutes), which the sorted shares do not see.
DISTRIBUTIONS = [
    ("zipf:1.2", 0.02),
    ("zipf:0.8", 0.02),
    ("pareto:0.9", 0.02),
    ("pareto:0.5", 0.02),
    ("normal:10", 0.025),
    ("normal:30", 0.025),
    ("zoned:60/10:30/20:10/70", 0.02),
    ("zoned_abs:60/64k:30/128k:10/832k", 0.02),
]
FRACTIONS = (0.05, 0.1, 0.2, 0.5)

# Per-I/O line: time, value, direction, size, offset, priority.
LINE = re.compile(r"^(\d+), (\d+), ([012]), (\d+), (\d+), 0$")
LINE_NO_OFFSET = re.compile(r"^(\d+), (\d+), ([012]), (\d+), 0$")


def read_log(path, offset=True):
    rows = []
    pat = LINE if offset else LINE_NO_OFFSET
    with open(path) as f:
        for ln in f:
            m = pat.match(ln.rstrip("\n"))
            check(m, f"{os.path.basename(path)}: not fio's per-I/O line: {ln!r}")
            rows.append(tuple(int(g) for g in m.groups()))
    return rows


def hot_shares(rows):
    """The shares of I/Os on the hottest FRACTIONS of the blocks."""
    hits = collections.Counter(r[4] // 4096 for r in rows)
    counts = sorted(hits.values(), reverse=True) + [0] * (BLOCKS - len(hits))
    return [sum(counts[:int(BLOCKS * f)]) / len(rows) for f in FRACTIONS]


def run_fio(args, cwd):
    p = subprocess.run(["fio", "--output=/dev/null"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    check(p.returncode == 0, f"fio {args}: exit {p.returncode}: {p.stderr.strip()}")


def offsets_of(d, prefix, uwdf_args, fio_args):
    """Runs the job in uwdf-bench and fio (null engine, randread) with a
    per-I/O IOPS log; the rows of each."""
    common = ["--ioengine=null", "--size=1m", "--rw=randread", "--bs=4k", f"--write_iops_log={prefix}",
              "--log_offset=1"]
    rc, _, err = bl.run([f"--name={prefix}", f"--filename={d}/data"] + common + uwdf_args + ["--output=/dev/null"],
                        cwd=d)
    check(rc == 0, f"uwdf-bench {uwdf_args}: exit {rc}: {err.strip()}")
    ours = read_log(os.path.join(d, f"{prefix}_iops.1.log"))
    fd = os.path.join(d, "fio")
    os.makedirs(fd, exist_ok=True)
    run_fio([f"--name={prefix}"] + common + fio_args, fd)
    theirs = read_log(os.path.join(fd, f"{prefix}_iops.1.log"))
    return ours, theirs


def distributions_have_fios_hot_sets():
    bl.tool("fio")
    with bl.TempDir() as d:
        for dist, tol in DISTRIBUTIONS:
            # fio stops after io_size bytes; uwdf-bench after number_ios (time_based: the region repeats)
            ours, theirs = offsets_of(d, "h", [f"--random_distribution={dist}", "--time_based", "--runtime=60",
                                               f"--number_ios={SAMPLES}"],
                                      [f"--random_distribution={dist}", f"--io_size={SAMPLES * 4}k"])
            check(len(ours) == SAMPLES and len(theirs) == SAMPLES,
                  f"{dist}: {len(ours)} I/Os logged, fio {len(theirs)}, expected {SAMPLES}")
            a, b = hot_shares(ours), hot_shares(theirs)
            for f, x, y in zip(FRACTIONS, a, b):
                check(abs(x - y) <= tol, f"{dist}: the hottest {f:.0%} of the blocks get {x:.3f} of the I/Os, "
                                         f"{y:.3f} in fio (all: {[round(v, 3) for v in a]} vs "
                                         f"{[round(v, 3) for v in b]})")


def distribution_center_places_the_hottest_block():
    bl.tool("fio")
    with bl.TempDir() as d:
        for dist, block in (("zipf:1.2:0.25", 64), ("pareto:0.9:0.5", 128), ("normal:5:0.75", 192)):
            ours, theirs = offsets_of(d, "c", [f"--random_distribution={dist}", "--time_based", "--runtime=60",
                                               "--number_ios=5000"],
                                      [f"--random_distribution={dist}", "--io_size=20000k"])
            hits = collections.Counter(r[4] // 4096 for r in ours)
            top = hits.most_common(1)[0][0]
            if dist.startswith("normal"):
                # the middle's neighbours are nearly as hot: among the hottest 5%
                tenth = sorted(hits.values(), reverse=True)[BLOCKS // 20]
                check(hits[block] >= tenth, f"{dist}: block {block} has {hits[block]} hits, "
                                            f"the hottest 5% at least {tenth}")
            else:
                check(top == block, f"{dist}: the hottest block is {top}, expected {block}")
            if dist.startswith("zipf"):  # fio hashes normal's and pareto's ranks: only zipf's rank 0 stays put
                ftop = collections.Counter(r[4] // 4096 for r in theirs).most_common(1)[0][0]
                check(ftop == block, f"{dist}: fio's hottest block is {ftop}")


def random_map_and_norandommap_as_fio():
    """Without time_based a random job does the region once: with the
    random map every block once, with norandommap as many I/Os with
    repeats. The same in fio."""
    bl.tool("fio")
    with bl.TempDir() as d:
        ours, theirs = offsets_of(d, "m", [], [])
        for who, rows in (("uwdf-bench", ours), ("fio", theirs)):
            blocks = sorted(r[4] // 4096 for r in rows)
            check(blocks == list(range(BLOCKS)), f"{who}, random map: blocks {blocks[:20]}... "
                                                 f"({len(rows)} I/Os, {len(set(blocks))} distinct)")
        ours, theirs = offsets_of(d, "n", ["--norandommap"], ["--norandommap"])
        for who, rows in (("uwdf-bench", ours), ("fio", theirs)):
            distinct = len({r[4] for r in rows})
            # 256 uniform draws from 256 blocks: about 162 distinct, never near 256
            check(len(rows) == BLOCKS and 130 <= distinct <= 195,
                  f"{who}, norandommap: {len(rows)} I/Os on {distinct} distinct blocks")


def bad_distributions_are_refused_as_fio():
    bl.tool("fio")
    with bl.TempDir() as d:
        # fio 3.33's manual has zones per direction (r,w,t), its parser refuses them
        for val in ("zipf:1", "pareto:1", "pareto:0", "normal:100", "zipf:1.2:1.5", "zoned:60/10:30/90",
                    "zoned:50/50", "bogus", "zoned_abs:60/64k:30/128k", "zoned_abs:50",
                    "zoned:60/10:40/90,50/50:50/50", "zoned_abs:60/64k:40/64k,100/1m"):
            rc, out, err = bl.run(["--parse-only", "--name=x", "--ioengine=null", "--size=1m", "--rw=randread",
                                   f"--random_distribution={val}"], cwd=d)
            check(rc == 1 and "random_distribution" in err, f"{val}: exit {rc}: {err.strip()}")
            p = subprocess.run(["fio", "--name=x", "--ioengine=null", "--size=1m", "--rw=randread",
                                f"--random_distribution={val}", "--parse-only"], cwd=d, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
            check("failed parsing random_distribution" in p.stdout, f"{val}: fio accepts it: {p.stdout.strip()}")
        for val in ("random", "zipf", "pareto", "normal", "zipf:0.5", "normal:0", "zoned:60/10:40/80",
                    "zoned_abs:60/64k:40/128k", "zoned_abs:100/1m"):
            rc, _, err = bl.run(["--parse-only", "--name=x", "--ioengine=null", "--size=1m", "--rw=randread",
                                 f"--random_distribution={val}"], cwd=d)
            check(rc == 0, f"{val}: refused: {err.strip()}")


def zoned_abs_zones_as_fio():
    """zoned_abs: each zone's share of the I/Os where fio puts it, from the
    region's start, by absolute size; nothing past the last zone; zones
    beyond the region: fio's message (fio then does no I/O and exits 0,
    uwdf-bench fails the job)."""
    bl.tool("fio")
    with bl.TempDir() as d:
        dist = "--random_distribution=zoned_abs:70/128k:20/64k:10/320k"
        ours, theirs = offsets_of(d, "z", [dist, "--time_based", "--runtime=60", "--number_ios=20000"],
                                  [dist, "--io_size=80000k"])
        bounds = ((0, 128 << 10), (128 << 10, 192 << 10), (192 << 10, 512 << 10), (512 << 10, 1 << 20))
        want = (0.7, 0.2, 0.1, 0.0)
        for who, rows in (("uwdf-bench", ours), ("fio", theirs)):
            shares = [sum(lo <= r[4] < hi for r in rows) / len(rows) for lo, hi in bounds]
            check(all(abs(s - w) <= 0.02 for s, w in zip(shares, want)),
                  f"{who}: zone shares {[round(s, 3) for s in shares]}, expected {want}")
            check(all(r[4] % 4096 == 0 for r in rows), f"{who}: an offset off the 4k blocks")
        rc, _, err = bl.run([f"--name=x", f"--filename={d}/data", "--ioengine=null", "--size=1m", "--rw=randread",
                             "--random_distribution=zoned_abs:60/512k:40/1m", "--output=/dev/null"], cwd=d)
        check(rc == 1 and "zoned_abs sizes exceed file size" in err, f"zones beyond 1m: exit {rc}: {err.strip()}")
        p = subprocess.run(["fio", "--name=x", f"--filename={d}/data", "--ioengine=null", "--size=1m",
                            "--rw=randread", "--random_distribution=zoned_abs:60/512k:40/1m", "--output=/dev/null"],
                           cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        check("zoned_abs sizes exceed file size" in p.stdout, f"fio: {p.stdout.strip()}")


def blockalign_offsets_as_fio():
    """blockalign (ba), one for all directions or per direction: offsets on
    its multiples (below the block size: off the block boundaries), each
    I/O whole inside the region, the random map off (as many I/Os as the
    region has blocks, with repeats), fio's note saying so."""
    bl.tool("fio")
    with bl.TempDir() as d:
        for extra, align in ((["--ba=512"], (512, 512)), (["--blockalign=16k"], (16384, 16384)),
                             (["--rw=randrw", "--ba=1k,8k"], (1024, 8192))):
            ours, theirs = offsets_of(d, "a", extra, extra)
            for who, rows in (("uwdf-bench", ours), ("fio", theirs)):
                what = f"{who} {extra}"
                check(len(rows) == BLOCKS, f"{what}: {len(rows)} I/Os, expected {BLOCKS}")
                check(all(r[3] == 4096 and r[4] + 4096 <= BLOCKS * 4096 for r in rows),
                      f"{what}: an I/O is cut or beyond the region: "
                      f"{[r for r in rows if r[3] != 4096 or r[4] + 4096 > BLOCKS * 4096][:3]}")
                for dd in (0, 1):
                    offs = [r[4] for r in rows if r[2] == dd]
                    check(all(o % align[dd] == 0 for o in offs),
                          f"{what}: direction {dd}: offsets off {align[dd]}: {[o for o in offs if o % align[dd]][:5]}")
                    if offs and align[dd] < 4096:
                        # 256 draws over 8 (or 4) residues: every one is hit
                        residues = {o % 4096 for o in offs}
                        check(residues == set(range(0, 4096, align[dd])),
                              f"{what}: direction {dd}: offsets modulo 4k {sorted(residues)}")
                    if offs and align[dd] > 4096:
                        check(len(set(offs)) <= BLOCKS * 4096 // align[dd], f"{what}: too many distinct offsets")
        rc, _, err = bl.run(["--name=a", f"--filename={d}/data", "--ioengine=null", "--size=1m",
                             "--rw=randread", "--ba=512", "--output=/dev/null"], cwd=d)
        check(rc == 0 and "blockalign= turns off randommap" in err, f"the note: exit {rc}: {err.strip()}")
        rc, _, err = bl.run(["--name=a", f"--filename={d}/data", "--ioengine=null", "--size=1m",
                             "--rw=randread", "--ba=512", "--norandommap", "--output=/dev/null"], cwd=d)
        check(rc == 0 and "randommap" not in err, f"norandommap given: exit {rc}: {err.strip()}")


JOB_FILE = """[global]
ioengine=null
size=64k
filename=data.dat
iodepth=4

[a]
rw=randrw
bs=4k
write_lat_log=a
write_bw_log=a
write_iops_log=a
log_offset=1

[b]
rw=write
bs=8k
write_iops_log
"""


def per_io_logs_as_fio():
    """log_avg_msec=0 (the default): a line per I/O in every log, with the
    I/O's size and offset; fio writes the same files and lines."""
    with bl.TempDir() as d:
        jf = bl.write_file(os.path.join(d, "j.fio"), JOB_FILE)
        rep = bl.run_json([jf], cwd=d)
        kinds = ("slat", "clat", "lat", "bw", "iops")
        ours = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "*.log")))
        want = sorted([f"a_{k}.1.log" for k in kinds] + ["b_iops.2.log"])
        check(ours == want, f"log files {ours}, expected {want}")
        a = rep["jobs"][0]
        logs = {k: read_log(os.path.join(d, f"a_{k}.1.log")) for k in kinds}
        n = a["read"]["total_ios"] + a["write"]["total_ios"]
        check(n == 16, f"a: {n} I/Os, expected 16")
        for k, rows in logs.items():
            check(len(rows) == n, f"a_{k}: {len(rows)} lines for {n} I/Os")
            check(sorted(r[4] for r in rows) == [i * 4096 for i in range(16)], f"a_{k}: offsets {[r[4] for r in rows]}")
            check({r[3] for r in rows} == {4096}, f"a_{k}: sizes {sorted({r[3] for r in rows})}")
            for dd, name in ((0, "read"), (1, "write")):
                check(sum(r[2] == dd for r in rows) == a[name]["total_ios"], f"a_{k}: {name}s")
        check({r[1] for r in logs["iops"]} == {1}, "a_iops: values other than 1")
        for (t, sl, dd, _, off), (_, cl, _, _, _), (_, lat, _, _, _), (_, bw, _, _, _) in zip(
                logs["slat"], logs["clat"], logs["lat"], logs["bw"]):
            check(lat == sl + cl, f"a at {off}: lat {lat} != slat {sl} + clat {cl}")
            check(bw == 4096 * 1000000 // max(cl, 1), f"a at {off}: bw {bw} for clat {cl} ns")
        b = read_log(os.path.join(d, "b_iops.2.log"), offset=False)
        check(len(b) == 8 and {(r[2], r[3]) for r in b} == {(1, 8192)}, f"b_iops: {b}")
        if bl.tool("fio"):
            fd = os.path.join(d, "fio")
            os.mkdir(fd)
            run_fio([jf], fd)
            theirs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(fd, "*.log")))
            check(theirs == ours, f"fio writes {theirs}, uwdf-bench {ours}")
            for name in theirs:
                if name.startswith("a_slat"):
                    continue  # fio's null engine completes at submission: no slat lines
                off = name.startswith("a_")
                rows, mine = read_log(os.path.join(fd, name), off), read_log(os.path.join(d, name), off)
                check(len(rows) == len(mine), f"{name}: fio {len(rows)} lines, uwdf-bench {len(mine)}")
                if off:
                    check(sorted(r[4] for r in rows) == sorted(r[4] for r in mine), f"{name}: offsets differ")
                check(sorted(r[3] for r in rows) == sorted(r[3] for r in mine), f"{name}: sizes differ")


if __name__ == "__main__":
    bl.main([
        ("distributions_have_fios_hot_sets", distributions_have_fios_hot_sets),
        ("distribution_center_places_the_hottest_block", distribution_center_places_the_hottest_block),
        ("random_map_and_norandommap_as_fio", random_map_and_norandommap_as_fio),
        ("bad_distributions_are_refused_as_fio", bad_distributions_are_refused_as_fio),
        ("zoned_abs_zones_as_fio", zoned_abs_zones_as_fio),
        ("blockalign_offsets_as_fio", blockalign_offsets_as_fio),
        ("per_io_logs_as_fio", per_io_logs_as_fio),
    ])
