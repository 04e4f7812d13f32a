#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The job journal's benchmark: what keeping a job server's jobs across restarts costs.

    bench/jobs/run.py BUILD-DIR [--quick]

1. SubmitJob latency, p50 and p99, from one client (one call at a time) and from 16
   (concurrent calls share a sync), with the journal and with --no-journal.
2. The wc job end to end: the lab's mode (FILE arguments, one worker, no journal: what
   the coordinator did before it had one), a job server without its journal (one
   worker) and with it (1, 2 and 3 workers), SubmitJob to the last GetJob reply, with
   the CPU seconds per job of the coordinator and the workers (and the coordinator's
   alone), the median and the fastest of the runs.
3. Restart: a journal of 10,000 ended and 100 queued jobs; time from exec to READY=1,
   listing the default 100 ended jobs and all 10,000.
4. Splits: wc over one 2 GB file (--quick: 200 MB) cut into 64 MiB splits, with 1 and 2
   workers, and over an eighth of it (three runs each, one and two workers alternating;
   --quick: one), each with fresh workers: the time (SubmitJob to the last GetJob reply),
   the speedup of 2 workers, the workers' CPU seconds, the backup attempts started, the
   load average before each run, and each worker's peak RSS (VmHWM), which should not
   grow with the file; and as a control, two mrkv-refwc over the file at once
   against one: the speedup the machine's two cores gave any two processes at that
   moment. Every output must equal mrkv-refwc's on the same file
   (a word count that shares no code with mrkv; mrkv-sequential --plain would need tens
   of GB here). The files are written by mrkv-gencorpus into MRKV_BENCH_TMP and kept.

Inputs: MRKV_BENCH_DATA (a directory of *.txt, e.g. the lab's Gutenberg books), else
texts written by mrkv-gencorpus. The state directories are in MRKV_BENCH_TMP (default
$TMPDIR or /tmp): its file system decides what a sync costs, and is printed. Exits
non-zero only when something broke (a process failed, a job did not end done).
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


class Client:
    """One blocking Varlink connection."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, method, parameters, more=False):
        msg = {"method": method, "parameters": parameters}
        if more:
            msg["more"] = True
        self.s.sendall(json.dumps(msg).encode() + b"\0")

    def read(self):
        while b"\0" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        i = self.buf.index(b"\0")
        reply = json.loads(self.buf[:i])
        self.buf = self.buf[i + 1:]
        if "error" in reply:
            raise RuntimeError("%s: %s" % (reply["error"], reply.get("parameters")))
        return reply

    def call(self, method, parameters):
        self.send(method, parameters)
        return self.read()["parameters"]

    def close(self):
        self.s.close()


class Coordinator:
    """mrkv-coordinator in a directory of its own, started with a $NOTIFY_SOCKET."""

    def __init__(self, build, work, state, args=(), files=(), cwd=None):
        self.sock = os.path.join(work, "c.sock")
        notify = os.path.join(work, "notify.sock")
        for p in (self.sock, notify):
            if os.path.exists(p):
                os.unlink(p)
        self.n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.n.bind(notify)
        env = dict(os.environ, NOTIFY_SOCKET=notify, MRKV_BUS="none")
        cmd = [os.path.join(build, "daemons/coordinator/mrkv-coordinator"), "--listen", "unix:" + self.sock,
               "--state-directory", state, "--log-level", "warning", *args, *files]
        self.start = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd or work)

    def wait_ready(self, timeout=120):
        self.n.settimeout(timeout)
        while True:
            data = self.n.recv(4096).decode()
            if "READY=1" in data.split("\n"):
                t = time.monotonic() - self.start
                # Unread, its STATUS= lines would fill the socket and block the daemon.
                self.n.close()
                self.n = None
                return t

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        if self.proc.wait(60) != 0:
            raise RuntimeError("mrkv-coordinator exited with %d" % self.proc.returncode)
        if self.n:
            self.n.close()


def worker(build, sock):
    return subprocess.Popen([os.path.join(build, "daemons/worker/mrkv-worker"), "--serve", "--connect",
                             "unix:" + sock], stderr=subprocess.DEVNULL)


def submit_parameters(files, nreduce=10, **extra):
    return dict({"app": "wc", "files": files, "nreduce": nreduce}, **extra)


def latency(build, work, journal, n, clients, input_file):
    state = tempfile.mkdtemp(dir=work)
    c = Coordinator(build, work, state, () if journal else ("--no-journal",))
    c.wait_ready()
    samples = []
    lock = threading.Lock()

    def run(k):
        cl = Client(c.sock)
        mine = []
        for _ in range(k):
            t = time.perf_counter()
            cl.call("org.mrkv.MapReduce.SubmitJob", submit_parameters([input_file], 1))
            mine.append(time.perf_counter() - t)
        cl.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=run, args=(n // clients,)) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    c.stop()
    shutil.rmtree(state)
    return percentile(samples, 50) * 1e3, percentile(samples, 99) * 1e3, len(samples) / wall


def job_server_run(c, files, **extra):
    cl = Client(c.sock)
    t = time.perf_counter()
    job = cl.call("org.mrkv.MapReduce.SubmitJob", submit_parameters(files, **extra))["job"]
    cl.send("org.mrkv.MapReduce.GetJob", {"job": job}, more=True)
    while True:
        reply = cl.read()
        if not reply.get("continues"):
            break
    elapsed = time.perf_counter() - t
    cl.close()
    if reply["parameters"]["job"]["state"] != "done":
        raise RuntimeError("job %s: %s" % (job, reply))
    return elapsed, reply["parameters"]["job"]


def wc_job_server(build, work, journal, files, runs, nworkers=1):
    state = tempfile.mkdtemp(dir=work)
    c = Coordinator(build, work, state, () if journal else ("--no-journal",))
    c.wait_ready()
    ws = [worker(build, c.sock) for _ in range(nworkers)]
    # The workers connect and load wc.so; a job with as many maps as workers, so that each
    # has run a task before the timing starts.
    for _ in range(3):
        job_server_run(c, files)
    procs = [c.proc.pid] + [w.pid for w in ws]
    cpu0 = sum(cpu_seconds(p) for p in procs)
    own0 = cpu_seconds(c.proc.pid)
    times = [job_server_run(c, files)[0] for _ in range(runs)]
    cpu = (sum(cpu_seconds(p) for p in procs) - cpu0) / runs
    own = (cpu_seconds(c.proc.pid) - own0) / runs
    for w in ws:
        w.terminate()  # a --serve worker waits for its coordinator forever
    for w in ws:
        w.wait(30)
    c.stop()
    shutil.rmtree(state)
    return statistics.median(times), min(times), cpu, own


def cpu_seconds(pid):
    """User + system CPU seconds of a running process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wc_lab(build, work, files, runs):
    times = []
    for _ in range(runs):
        d = tempfile.mkdtemp(dir=work)
        c = Coordinator(build, work, d, (), files, cwd=d)
        c.n.close()
        c.n = None
        while not os.path.exists(c.sock):
            time.sleep(0.0005)
        w = subprocess.Popen([os.path.join(build, "daemons/worker/mrkv-worker"), "--connect", "unix:" + c.sock, "wc"],
                             stderr=subprocess.DEVNULL, cwd=d)
        if c.proc.wait(120) != 0:
            raise RuntimeError("lab-mode coordinator failed")
        times.append(time.monotonic() - c.start)
        w.wait(30)
        shutil.rmtree(d)
    return statistics.median(times)


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def sorted_lines(paths):
    lines = []
    for p in paths:
        with open(p, "rb") as f:
            lines.extend(f.read().splitlines())
    lines.sort()
    return lines


def generated_file(build, base, size):
    """One text of size bytes written by mrkv-gencorpus, kept in base for later runs."""
    d = os.path.join(base, "mrkv-bench-single-%d" % size)
    path = os.path.join(d, "pg-single-0.txt")
    if not os.path.exists(os.path.join(d, ".generated")):
        shutil.rmtree(d, ignore_errors=True)
        subprocess.run([os.path.join(build, "tests/tools/gencorpus/mrkv-gencorpus"), "--files", "1", "--size",
                        str(size), "--prefix", "pg-single-", d], check=True, stdout=subprocess.DEVNULL)
        open(os.path.join(d, ".generated"), "w").close()
    return path


def wc_splits(build, work, path, nworkers, split_size, expected):
    """One wc job over path in splits, fresh workers: (seconds, worker peaks in KiB, maps,
    the workers' CPU seconds, backup attempts started, the 1-minute load average before)."""
    load = float(open("/proc/loadavg").read().split()[0])
    state = tempfile.mkdtemp(dir=work)
    out = tempfile.mkdtemp(dir=work)
    c = Coordinator(build, work, state)
    c.wait_ready()
    ws = [worker(build, c.sock) for _ in range(nworkers)]
    # The client sends the file's size: the coordinator cuts splits by it, without reading it.
    t, job = job_server_run(c, [path], workdir=out, split_size=split_size, sizes=[os.path.getsize(path)])
    maps = job.get("map_total", "?")
    backups = job.get("counters", {}).get("backup_attempts_started", 0)
    peaks = [peak_rss_kib(w.pid) for w in ws]
    cpu = sum(cpu_seconds(w.pid) for w in ws)
    for w in ws:
        w.terminate()
    for w in ws:
        w.wait(30)
    c.stop()
    got = sorted_lines(os.path.join(out, f) for f in os.listdir(out) if f.startswith("mr-out-"))
    if got != expected:
        raise RuntimeError("wc over %s with %d worker(s): the output differs from mrkv-refwc's" % (path, nworkers))
    shutil.rmtree(state)
    shutil.rmtree(out)
    return t, peaks, maps, cpu, backups, load


def refwc_lines(build, path):
    p = subprocess.run([os.path.join(build, "bench/mapreduce/mrkv-refwc"), path], check=True, capture_output=True)
    return sorted(p.stdout.splitlines())


def parallel_control(build, path):
    """What two cores give at the moment: mrkv-refwc over path alone, then two at once.
    Returns 2 x the time of one / the time of the pair, the speedup any two-process job
    could reach then (2.0 on an otherwise idle machine)."""
    cmd = [os.path.join(build, "bench/mapreduce/mrkv-refwc"), path]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    one = time.perf_counter() - t
    t = time.perf_counter()
    pair = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(2)]
    if any(p.wait() != 0 for p in pair):
        raise RuntimeError("mrkv-refwc failed")
    return 2 * one / (time.perf_counter() - t)


def build_journal(build, work, ended, queued, input_file):
    """A state directory whose journal holds ended (cancelled) and queued jobs."""
    state = tempfile.mkdtemp(dir=work)
    c = Coordinator(build, work, state, ("--keep-jobs", str(ended + queued)))
    c.wait_ready()
    clients = 16

    def run(k, cancel):
        cl = Client(c.sock)
        for _ in range(k):
            job = cl.call("org.mrkv.MapReduce.SubmitJob", submit_parameters([input_file], 1))["job"]
            if cancel:
                cl.call("org.mrkv.MapReduce.CancelJob", {"job": job})
        cl.close()

    threads = [threading.Thread(target=run, args=(ended // clients, True)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run(queued, False)
    c.stop()
    return state, ended // clients * clients


def restart_time(build, work, pristine, keep, runs):
    times = []
    for _ in range(runs):
        state = tempfile.mkdtemp(dir=work)
        shutil.rmtree(state)
        shutil.copytree(pristine, state, symlinks=True)
        c = Coordinator(build, work, state, ("--keep-jobs", str(keep)))
        times.append(c.wait_ready())
        cl = Client(c.sock)
        jobs = cl.call("org.mrkv.MapReduce.ListJobs", {})["jobs"]
        cl.close()
        c.stop()
        shutil.rmtree(state)
    return statistics.median(times), len(jobs)


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main(argv):
    if len(argv) not in (1, 2) or (len(argv) == 2 and argv[1] != "--quick"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build = os.path.abspath(argv[0])
    quick = len(argv) == 2
    os.environ["MRKV_APP_PATH"] = os.path.join(build, "apps/mapreduce")
    base = os.environ.get("MRKV_BENCH_TMP") or os.environ.get("TMPDIR") or "/tmp"
    work = tempfile.mkdtemp(prefix="mrkv-jobbench.", dir=base)
    try:
        data = os.environ.get("MRKV_BENCH_DATA")
        if data:
            files = sorted(os.path.join(os.path.abspath(data), f) for f in os.listdir(data) if f.endswith(".txt"))
            kind = "Gutenberg"
        else:
            texts = os.path.join(work, "texts")
            subprocess.run([os.path.join(build, "tests/tools/gencorpus/mrkv-gencorpus"), "--prefix", "pg-gen-",
                            texts], check=True, stdout=subprocess.DEVNULL)
            files = sorted(os.path.join(texts, f) for f in os.listdir(texts))
            kind = "generated texts"
        fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", work], capture_output=True,
                            text=True).stdout.strip() or "?"
        print("# Job journal benchmark\n")
        print("- state directories on %s (%s); nproc %d; load %s" % (base, fs, os.cpu_count(),
                                                                     " ".join(open("/proc/loadavg").read().split()[:3])))
        print("- inputs: %s, %d files, %.1f MB\n" % (kind, len(files), sum(os.path.getsize(f) for f in files) / 1e6))

        n = 300 if quick else 2000
        print("| SubmitJob | clients | calls | p50 (ms) | p99 (ms) | calls/s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for clients in (1, 16):
            for journal in (False, True):
                p50, p99, rate = latency(build, work, journal, n, clients, files[0])
                print("| %s | %d | %d | %.3f | %.3f | %.0f |" % ("journal" if journal else "--no-journal", clients,
                                                                 n // clients * clients, p50, p99, rate))

        runs = 3 if quick else 15
        print("\n| wc job | workers | runs | median wall (s) | fastest (s) | CPU per job (s) | of it the coordinator's (s) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        print("| lab mode (FILE arguments, no journal) | 1 | %d | %.3f | | | |" % (runs, wc_lab(build, work, files, runs)))
        print("| job server, --no-journal | 1 | %d | %.3f | %.3f | %.3f | %.3f |"
              % (runs, *wc_job_server(build, work, False, files, runs)))
        for n in (1, 2, 3):
            print("| job server, journal | %d | %d | %.3f | %.3f | %.3f | %.3f |"
                  % (n, runs, *wc_job_server(build, work, True, files, runs, n)), flush=True)

        ended, queued = (1000, 100) if quick else (10000, 100)
        pristine, ended = build_journal(build, work, ended, queued, files[0])
        size = du(os.path.join(pristine, "journal"))
        print("\n| restart: journal of %d ended + %d queued jobs (%.1f MB) | runs | median to READY=1 (s) | jobs listed |"
              % (ended, queued, size / 1e6))
        print("| --- | ---: | ---: | ---: |")
        for keep in (100, ended):
            t, listed = restart_time(build, work, pristine, keep, 3)
            print("| --keep-jobs %d | 3 | %.3f | %d |" % (keep, t, listed))

        size = 200 * 1000 * 1000 if quick else 2000 * 1000 * 1000
        split = 64 * 1024 * 1024
        big = generated_file(build, base, size)
        small = generated_file(build, base, size // 8)
        # The smaller file's runs alternate one and two workers, so that a burst of other
        # load hits both; the worker CPU seconds (user + system) and the load average tell
        # a run slowed from outside (the same CPU, a longer wall) from one doing more work.
        print("\n| wc, one file in %d MiB splits (journal) | workers | maps | runs | median wall (s) | speedup "
              "| worker CPU (s) | backups | load before | peak RSS per worker (MiB) |" % (split >> 20))
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for path, nruns in ((small, 1 if quick else 3), (big, 1)):
            expected = refwc_lines(build, path)
            control = parallel_control(build, path)
            rows = {1: [], 2: []}
            for _ in range(nruns):
                for n in (1, 2):
                    rows[n].append(wc_splits(build, work, path, n, split, expected))
            base_time = None
            for n in (1, 2):
                t = statistics.median(r[0] for r in rows[n])
                base_time = base_time or t
                peaks, maps = rows[n][-1][1], rows[n][-1][2]
                print("| %.0f MB | %d | %s | %d | %.2f | %.2fx | %.2f | %d | %s | %s |"
                      % (os.path.getsize(path) / 1e6, n, maps, nruns, t, base_time / t,
                         statistics.median(r[3] for r in rows[n]), sum(r[4] for r in rows[n]),
                         ", ".join("%.1f" % r[5] for r in rows[n]), ", ".join("%.1f" % (k / 1024) for k in peaks)),
                      flush=True)
            print("| %.0f MB, control: two mrkv-refwc at once against one | 2 | | | | %.2fx | | | | |"
                  % (os.path.getsize(path) / 1e6, control), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
