#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-bounds.py CASE

The connection-level bounds of the daemons' Varlink server, on a real mrkv-coordinator
(the same server as mrkv-kvserver's) in a fresh temporary directory, which is removed,
and every process started here killed, also when a check fails.

  flood  the coordinator under a 256-descriptor limit, 1,000 connections held open by a
         flooder that reopens every one the coordinator closes: a legitimate call is
         answered all along, the coordinator's log stays a few lines, and its CPU time
         during the flood is printed (a coordinator that spins at EMFILE fails).
  drip   4 clients each send 15 MiB of a message and then one byte every 10 ms: they are
         closed after --message-timeout, a legitimate client is served throughout, and
         the coordinator's CPU time while they drip is printed (one that searches the
         whole partial message on every byte uses most of a core).
  idle   --idle-timeout=1: an idle connection is closed; a worker idle between jobs, a
         "submit --wait" watcher of a queued job and the jobs they run are not cut.

Environment (set by meson): MRKV_COORDINATOR, MRKV_WORKER, MRKV_MRKVCTL, MRKV_APP_PATH,
MRKV_GENCORPUS. Exit status 0 passed, 1 failed.
"""
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")


class Fail(Exception):
    pass


def wait_until(seconds, what, condition):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise Fail("timed out after %ss waiting until %s" % (seconds, what))
        time.sleep(0.02)


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def call(path, method="org.varlink.service.GetInfo", parameters=None, timeout=5.0):
    """One call on a new connection; the reply object, or raises on time-out or close."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps({"method": method, "parameters": parameters or {}}).encode() + b"\0")
        data = b""
        while b"\0" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a reply")
            data += chunk
    finally:
        s.close()
    return json.loads(data[: data.index(b"\0")])


def closed(sock):
    """Whether the peer has closed sock (no data expected on it)."""
    try:
        return sock.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


class Run:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="mrkv-bounds.")
        self.sock = os.path.join(self.tmp, "coordinator.sock")
        self.procs = []

    def spawn(self, argv, log, limit_nofile=None, **kw):
        def preexec():
            if limit_nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit_nofile, limit_nofile))

        out = open(os.path.join(self.tmp, log), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec, **kw)
        out.close()
        self.procs.append(p)
        return p

    def coordinator(self, *args, limit_nofile=None):
        p = self.spawn([os.environ["MRKV_COORDINATOR"], "--listen", "unix:" + self.sock,
                        "--state-directory", os.path.join(self.tmp, "state")] + list(args),
                       "coordinator.log", limit_nofile=limit_nofile)
        wait_until(10, "the coordinator listens", lambda: os.path.exists(self.sock))
        return p

    def log(self, name="coordinator.log"):
        with open(os.path.join(self.tmp, name), "rb") as f:
            return f.read()

    def cleanup(self, failed):
        for p in self.procs:  # only what this script started, by its id
            if p.poll() is None:
                p.kill()
            p.wait()
        if failed:
            for name in sorted(os.listdir(self.tmp)):
                if name.endswith(".log"):
                    text = self.log(name).decode(errors="replace").splitlines()
                    print("--- %s (last 30 of %d lines):" % (name, len(text)), file=sys.stderr)
                    print("\n".join(text[-30:]), file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)


FLOODER = r"""
import resource, selectors, socket, sys, time
path, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
opened = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    while len(sel.get_map()) < n:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except (BlockingIOError, InterruptedError):
            pass  # in the listen backlog
        except OSError:
            s.close()  # the backlog is full: try again after a pause
            break
        sel.register(s, selectors.EVENT_READ)
        opened += 1
    for key, _ in sel.select(0.01):
        sel.unregister(key.fileobj)
        key.fileobj.close()
print(opened, flush=True)
"""


def case_flood(run):
    seconds = 5.0
    coord = run.coordinator(limit_nofile=256)
    run.spawn([sys.executable, "-c", FLOODER, run.sock, "1000", str(seconds)], "flooder.log")
    time.sleep(0.3)
    cpu0, t0 = cpu_seconds(coord.pid), time.monotonic()
    answered, slowest = 0, 0.0
    while time.monotonic() - t0 < seconds - 0.5:
        begin = time.monotonic()
        try:
            reply = call(run.sock, timeout=3.0)
        except OSError as e:
            raise Fail("a legitimate call during the flood failed after %.1fs: %s"
                       % (time.monotonic() - begin, e))
        if reply.get("parameters", {}).get("product") != "mrkv-coordinator":
            raise Fail("unexpected reply %r" % reply)
        answered += 1
        slowest = max(slowest, time.monotonic() - begin)
        time.sleep(0.1)
    cpu, wall = cpu_seconds(coord.pid) - cpu0, time.monotonic() - t0
    run.procs[-1].wait()
    lines = run.log().count(b"\n")
    print("flood: %s connections opened; coordinator CPU %.2f s in %.2f s (%.0f%%); %d legitimate calls "
          "answered, the slowest in %.0f ms; coordinator log %d lines, %d bytes"
          % (run.log("flooder.log").decode().strip(), cpu, wall, 100 * cpu / wall, answered,
             1000 * slowest, lines, len(run.log())))
    if coord.poll() is not None:
        raise Fail("the coordinator exited: %s" % coord.returncode)
    if lines > 20:
        raise Fail("the coordinator logged %d lines during the flood" % lines)
    call(run.sock)


DRIPPER = r"""
import socket, sys, time
path, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(b'{"method":"org.varlink.service.GetInfo","parameters":{"x":"' + b"x" * size)
begin, n = time.monotonic(), 0
try:
    while time.monotonic() - begin < 60:
        s.send(b"x")
        n += 1
        time.sleep(0.01)
except OSError:
    print("closed after %.1f s of dripping, %d bytes" % (time.monotonic() - begin, n), flush=True)
    sys.exit(0)
sys.exit(1)
"""


def case_drip(run):
    coord = run.coordinator("--message-timeout=5")
    drippers = [run.spawn([sys.executable, "-c", DRIPPER, run.sock, str(15 << 20)], "dripper%d.log" % i)
                for i in range(4)]
    time.sleep(0.5)
    cpu0, t0 = cpu_seconds(coord.pid), time.monotonic()
    while time.monotonic() - t0 < 3:
        call(run.sock)
        time.sleep(0.1)
    cpu, wall = cpu_seconds(coord.pid) - cpu0, time.monotonic() - t0
    print("drip: coordinator CPU %.2f s in %.2f s (%.0f%%) with 4 drippers" % (cpu, wall, 100 * cpu / wall))
    wait_until(30, "the drippers are closed", lambda: all(p.poll() is not None for p in drippers))
    for i, p in enumerate(drippers):
        if p.returncode != 0:
            raise Fail("dripper %d was not closed" % i)
        print("dripper %d: %s" % (i, run.log("dripper%d.log" % i).decode().strip()))
    call(run.sock)
    warnings = run.log().count(b"has not sent a whole message")
    print("drip: %d message time-out log lines for 4 connections closed" % warnings)
    if not 1 <= warnings <= 4:
        raise Fail("expected 1 to 4 log lines about the message time-out, got %d" % warnings)


def case_idle(run):
    mrkvctl = os.environ["MRKV_MRKVCTL"]
    inputs = os.path.join(run.tmp, "in")
    os.mkdir(inputs)
    subprocess.run([os.environ["MRKV_GENCORPUS"], "--files", "3", "--size", "20000", "--prefix", "pg-", inputs],
                   check=True)
    files = sorted(os.path.join(inputs, f) for f in os.listdir(inputs))
    env = dict(os.environ, MRKV_COORDINATOR_ADDRESS="unix:" + run.sock)
    run.coordinator("--idle-timeout=1", "--log-level=debug")

    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(run.sock)
    # A watcher of a job that waits for a worker for longer than the time-out.
    submit = run.spawn([mrkvctl, "submit", "wc", "--nreduce", "2", "--wait"] + files, "submit1.log", env=env)
    wait_until(10, "the idle connection is closed", lambda: closed(idle))
    idle.close()
    time.sleep(1.5)
    if submit.poll() is not None:
        raise Fail("submit --wait ended before the job ran: %s" % run.log("submit1.log").decode())
    run.spawn([os.environ["MRKV_WORKER"], "--serve", "--connect", "unix:" + run.sock], "worker.log", env=env)
    wait_until(30, "the first job is done", lambda: submit.poll() is not None)
    if submit.returncode != 0:
        raise Fail("submit --wait failed: %s" % run.log("submit1.log").decode())
    # The worker now waits for a task (a call in flight) past the time-out, then a second job.
    time.sleep(2.5)
    second = subprocess.run([mrkvctl, "submit", "wc", "--nreduce", "2", "--wait"] + files, env=env,
                            capture_output=True, timeout=30)
    if second.returncode != 0:
        raise Fail("the second job failed: %s" % second.stderr.decode())
    connected = run.log().count(b"Worker ")
    print("idle: idle connection closed; watcher and worker kept; worker connected %d time(s)" % connected)
    if run.log().count(b" connected.") != 1:
        raise Fail("the worker connected more than once:\n%s" % run.log().decode())


def main(argv):
    cases = {"flood": case_flood, "drip": case_drip, "idle": case_idle}
    if len(argv) != 1 or argv[0] not in cases:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # meson's time-out: clean up
    run = Run()
    failed = True
    try:
        cases[argv[0]](run)
        failed = False
    except Fail as e:
        print("--- %s: FAIL: %s" % (argv[0], e), file=sys.stderr)
    finally:
        run.cleanup(failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
