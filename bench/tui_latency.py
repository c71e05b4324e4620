#!/usr/bin/python3
"""bench/tui_latency.py - key-to-screen latency of the explorer while an
attack runs: advex in a private tmux server (160x50), the attack running
(Space), then KEYS presses of b (log/linear bars); each is timed from
send-keys until the probability panel's title shows the new scale, polling
capture-pane. Prints the median and the 95th percentile in ms (goal: a
median of 50 ms or less during VGG16 steps). Not a test: timings on a
loaded machine say little.

usage: bench/tui_latency.py [--advex ./advex] [--keys 40] [-- advex args]
       (default advex args: --arch vgg16; '--' alone: the bundled demo)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--advex", default="./advex")
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    o = ap.parse_args()
    args = o.rest[1:] if o.rest[:1] == ["--"] else (o.rest or ["--arch", "vgg16"])
    if not shutil.which("tmux"):
        sys.exit("tui_latency: needs tmux")
    tmp = tempfile.mkdtemp()
    sock = "advex-latency-%d" % os.getpid()
    os.makedirs(os.path.join(tmp, "advex"))
    open(os.path.join(tmp, "advex", "tour-seen"), "w").close()

    def tm(*a, capture=False):
        r = subprocess.run(["tmux", "-u", "-L", sock, "-f", "/dev/null"] + list(a),
                           capture_output=True, text=True)
        return r.stdout if capture else None

    def screen():
        return tm("capture-pane", "-p", "-t", "b", capture=True)

    def wait(text, timeout=120.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if text in screen():
                return time.monotonic() - t0
        sys.exit("tui_latency: timed out waiting for %r" % text)

    cmd = "env XDG_DATA_HOME=%s LANG=C.UTF-8 %s --db %s/runs.db %s" % (
        tmp, os.path.abspath(o.advex), tmp, " ".join(args))
    try:
        tm("new-session", "-d", "-s", "b", "-x", "160", "-y", "50", cmd)
        wait("1 Browse")
        tm("send-keys", "-t", "b", "2")
        wait("at iter 0")
        tm("send-keys", "-t", "b", "i", "i", "i", "i", "i", "i", "Space")
        wait("running")
        ms = []
        linear = False
        for _ in range(o.keys):
            linear = not linear
            t0 = time.monotonic()
            tm("send-keys", "-t", "b", "b")
            wait("(linear)" if linear else "(log scale)", 30.0)
            ms.append(1000.0 * (time.monotonic() - t0))
        still = "running" in screen()
        ms.sort()
        p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
        print("key-to-screen latency over %d keys%s: median %.1f ms, p95 %.1f ms, max %.1f ms"
              % (len(ms), "" if still else " (the attack ended before the last key)",
                 statistics.median(ms), p95, ms[-1]))
    finally:
        tm("kill-server")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
