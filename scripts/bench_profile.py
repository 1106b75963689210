"""Where the time goes: the profile behind the shortfalls in docs/benchmarks.md (issue #25 asks
that a shortfall that is physical be shown by a profile, not asserted). Imported by bench.py for
`python3 scripts/bench.py --profile`; it writes its own section of docs/benchmarks.md.

Every figure comes from the kernel's own accounting of each server thread, read before and after
the same wrk run: run time and run-queue wait (/proc/.../schedstat), user and kernel CPU
(/proc/.../stat), voluntary and involuntary context switches (/proc/.../status).
"""
import datetime, os, re

import bench as B

START, END = B.PF_START, B.PF_END

def task_stats(pids):
    """Summed over every thread of `pids`: run and run-queue wait (ns), user and kernel CPU
    (clock ticks), voluntary and involuntary context switches."""
    s = dict(run=0, wait=0, slices=0, user=0, sys=0, vol=0, invol=0)
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            base = f"/proc/{p}/task/{t}"
            try:
                run, wait, slices = open(f"{base}/schedstat").read().split()
                f = open(f"{base}/stat").read().rsplit(")", 1)[1].split()
                st = open(f"{base}/status").read()
            except OSError:
                continue
            s["run"] += int(run); s["wait"] += int(wait); s["slices"] += int(slices)
            s["user"] += int(f[11]); s["sys"] += int(f[12])
            s["vol"] += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
            s["invol"] += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
    return s

def delta(a, b):
    return {k: b[k] - a[k] for k in a}

def measure(kind, workers, mode, extra, conns, close, dur):
    """One wrk run against a fresh server: its figures, the whole server's counters and the
    arbiter's own (herd only), per request."""
    s = B.Server(kind, workers, mode, extra)
    kids = B.children(s.p.pid)
    # herd-hyper is one process (its threads are its tasks); herd and herd-raw fork.
    serving = [s.p.pid] if kind == "hyper" else kids
    arbiter = [s.p.pid] if kind == "herd" else []
    a0, each0 = task_stats(arbiter), [task_stats([p]) for p in serving]
    rps, total, p50, p99, _ = B.wrk(s.port, dur, conns=conns, close=close)
    a = delta(a0, task_stats(arbiter))
    # Each serving process read once; the whole is their sum.
    each = [delta(e0, task_stats([p])) for p, e0 in zip(serving, each0)]
    w = {k: sum(e[k] for e in each) for k in a}
    s.stop()
    n = max(total, 1)
    return dict(
        rps=rps, p99=p99,
        # CPU per request, all server processes: schedstat's run time, in ns. The user and kernel
        # times of /proc/PID/stat come in whole clock ticks per process, rounded down: at 256
        # workers each has a few ms of a run, and the sum lost half of it.
        cpu_us=((a["run"] + w["run"]) / 1e3) / n,
        # The kernel's share, from those ticks: close enough where every process has many.
        kernel=(a["sys"] + w["sys"]) / max(a["user"] + a["sys"] + w["user"] + w["sys"], 1),
        switches=(a["vol"] + a["invol"] + w["vol"] + w["invol"]) / n,
        arb_switches=(a["vol"] + a["invol"]) / n,
        arb_us=(a["run"] / 1e3) / n,
        # The arbiter's own CPU: the share of it in the kernel; and its wakeups per request (each
        # voluntary switch is one sleep, so one wakeup after it).
        arb_kernel=a["sys"] / max(a["user"] + a["sys"], 1),
        arb_wakeups=a["vol"] / n,
        # Run-queue wait of the processes (threads) that serve, against their run time.
        wait_share=w["wait"] / max(w["run"] + w["wait"], 1),
        wait_us=(w["wait"] / 1e3) / n,
        # The mean wait before each time on a core: many short waits, or few long ones.
        wait_per_slice_us=(w["wait"] / 1e3) / max(w["slices"], 1),
        # The busiest serving process's share of the serving processes' CPU.
        busiest=max(e["run"] for e in each) / max(w["run"], 1),
    )

def arbiter_samples(workers, dur):
    """perf's samples of a signaled arbiter (4999 Hz, its CPU time only) over a wrk run
    (`Connection: close`, -c16): the share of them in the kernel, in its two paths that finish a
    context switch and wake a worker (`finish_task_switch`, and the unlock of
    `_raw_spin_unlock_irqrestore` that try_to_wake_up ends with), and in herd's own code."""
    s = B.Server("herd", workers, "signaled")
    data = f"{B.WORK}/perf-arbiter-{workers}.data"
    rec = B.subprocess.Popen(["perf", "record", "-q", "-F", "4999", "-p", str(s.p.pid), "-o", data, "--", "sleep", str(dur)],
                             stdout=B.subprocess.DEVNULL, stderr=B.subprocess.DEVNULL)
    B.wrk(s.port, dur, conns=16, close=True)
    rec.wait()
    s.stop()
    def shares(key):
        out = B.sh(["perf", "report", "-i", data, "--no-children", "--sort", key, "-g", "none", "--stdio"]).stdout
        rows = [l.split(None, 1) for l in out.splitlines() if l.strip() and not l.lstrip().startswith("#")]
        return {name.strip(): float(pct.rstrip("%")) / 100 for pct, name in rows if pct.endswith("%")}
    dso, sym = shares("dso"), shares("sym")
    switch = sum(v for k, v in sym.items() if k.endswith(("finish_task_switch.isra.0", "finish_task_switch",
                                                          "_raw_spin_unlock_irqrestore")))
    return dict(kernel=dso.get("[kernel.kallsyms]", 0.0), switch=switch, own=dso.get("herd", 0.0))

def rounds(cases, n, **kw):
    """`n` rounds alternating the cases: the median of each figure per case, and every round's."""
    runs = {name: [] for name, *_ in cases}
    for r in range(n):
        for name, kind, workers, mode, extra in cases:
            runs[name].append(measure(kind, workers, mode, extra, **kw))
            print(r, name, {k: round(v, 3) for k, v in runs[name][-1].items()}, flush=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    return {name: {k: med([x[k] for x in v]) for k in v[0]} for name, v in runs.items()}, runs

def section():
    dur, n = (3, 1) if B.QUICK else (5, 5)
    close, _ = rounds([("raw fork-accept", "raw", 4, None, []), ("herd shared", "herd", 4, "shared", []),
                       ("herd auto", "herd", 4, "auto", []), ("herd signaled", "herd", 4, "signaled", [])],
                      n, conns=16, close=True, dur=dur)
    cores = os.cpu_count()
    ka, ka_runs = rounds([("hyper, 1 thread", "hyper", 1, None, []), ("herd async, 1 worker", "herd", 1, "shared", ["-k", "async"]),
                          (f"hyper, {cores} threads", "hyper", cores, None, []),
                          (f"herd async, {cores} workers", "herd", cores, "shared", ["-k", "async"])],
                         n, conns=64, close=False, dur=dur)
    # The scale shortfalls (signaled and auto against raw at 64 and 256 workers), profiled the same
    # way: every case alternated in each round.
    counts = (64, 256)
    scale_cases = [(f"{name}, {w} workers", kind, w, mode, []) for w in counts
                   for name, kind, mode in (("raw fork-accept", "raw", None), ("herd shared", "herd", "shared"),
                                            ("herd auto", "herd", "auto"), ("herd signaled", "herd", "signaled"))]
    scale, _ = rounds(scale_cases, n, conns=16, close=True, dur=dur)
    samples = {w: arbiter_samples(w, dur) for w in (4, 64, 256)}
    raw = close["raw fork-accept"]
    L = [START, "", "## Where the time goes", "",
         "The profile behind the shortfalls above: the kernel's own accounting of every server process "
         "(thread, for hyper) over the same wrk run — run time and run-queue wait (`/proc/.../schedstat`), "
         "user and kernel CPU (`/proc/.../stat`), context switches (`/proc/.../status`) — divided by the "
         f"requests served; {n} rounds alternated, {dur} s each, medians; measured in one run on "
         f"{datetime.date.today()} (`python3 scripts/bench.py --profile`).", "",
         "**Connection: close**, 4 workers, wrk -t1 -c16:", "",
         "| server | requests/s (vs raw) | CPU µs/request (vs raw) | of it in the kernel | context switches/request "
         "| of them the arbiter's | arbiter µs/request | run-queue wait µs/request |",
         "|---|---|---|---|---|---|---|---|"]
    for name, r in close.items():
        L.append(f"| {name} | {r['rps']:,.0f} ({r['rps'] / raw['rps']:.2f}x) | {r['cpu_us']:.1f} "
                 f"({r['cpu_us'] / raw['cpu_us']:.2f}x) | {r['kernel']:.0%} | {r['switches']:.2f} | "
                 f"{r['arb_switches']:.2f} | {r['arb_us']:.1f} | {r['wait_us']:.1f} |")
    sig = close["herd signaled"]
    extra_sw = sig["switches"] - raw["switches"]
    extra_us = sig["cpu_us"] - raw["cpu_us"]
    L += ["",
          f"Signaled mode pays {extra_sw:.2f} context switches and {extra_us:.1f} µs of CPU per request more "
          f"than raw ({sig['kernel']:.0%} of its CPU in the kernel); the arbiter's own share is "
          f"{sig['arb_switches']:.2f} wakeups and {sig['arb_us']:.1f} µs per request. That round trip (the "
          "arbiter wakes for the connection and writes `ACCEPT:<socket>`, the worker wakes for the frame, the "
          "arbiter reads `ACCEPTED`) is what signaled mode is: the arbiter chooses the one worker a connection "
          "wakes. On 2 cores shared with the load generator, the CPU it takes is CPU wrk and the workers do "
          "not get.", "",
          f"**Connection: close at {counts[0]} and {counts[-1]} workers**, wrk -t1 -c16 (the scale section's "
          "shortfalls), against raw with as many processes:", "",
          "| server | requests/s (vs raw) | CPU µs/request (vs raw) | context switches/request "
          "| arbiter wakeups/request | arbiter µs/request | of the arbiter's CPU in the kernel |",
          "|---|---|---|---|---|---|---|"]
    for name, r in scale.items():
        base = scale[f"raw fork-accept, {name.rsplit(', ', 1)[1]}"]
        L.append(f"| {name} | {r['rps']:,.0f} ({r['rps'] / base['rps']:.2f}x) | {r['cpu_us']:.1f} "
                 f"({r['cpu_us'] / base['cpu_us']:.2f}x) | {r['switches']:.2f} | "
                 f"{r['arb_wakeups']:.2f} | {r['arb_us']:.1f} | {r['arb_kernel']:.0%} |")
    L.append("")
    for w in counts:
        base = scale[f"raw fork-accept, {w} workers"]
        parts = []
        for mode in ("signaled", "auto"):
            r = scale[f"herd {mode}, {w} workers"]
            extra = r["cpu_us"] - base["cpu_us"]
            parts.append(f"{mode} {r['rps'] / base['rps']:.2f}x raw's requests/s, {extra:+.1f} µs of CPU per request "
                         f"against raw, of which the arbiter's {r['arb_us']:.1f} µs in {r['arb_wakeups']:.2f} wakeups "
                         f"({r['arb_kernel']:.0%} of it in the kernel)")
        L.append(f"- {w} workers: " + "; ".join(parts) + ".")
    a4 = close["herd auto"]
    shares = [scale[f"herd {m}, {w} workers"]["arb_kernel"] for m in ("signaled", "auto") for w in counts]
    L += ["",
          "With many workers and 16 connections most workers are idle, and an idle worker in auto mode waits for "
          "the arbiter's `ACCEPT:<socket>`: auto is signaled there, the arbiter's round trip per connection "
          f"(at 4 workers, where every worker is busy and takes its next connection itself, auto's arbiter wakes "
          f"{a4['arb_wakeups']:.2f} times per request). Of the arbiter's CPU there, {min(shares):.0%}-{max(shares):.0%} "
          "is the kernel's (waking and switching, the socket calls of the round trip), not the arbiter's own code; "
          "shared mode, whose arbiter is not on the way of each connection, is the row to set against it.", "",
          "Where a signaled arbiter's time goes, from perf's samples of it over one wrk run each "
          "(`perf record -F 4999`, its CPU time only):", "",
          "| workers | in the kernel | of it finishing a context switch or waking a worker | herd's own code |",
          "|---|---|---|---|"]
    for w, r in samples.items():
        L.append(f"| {w} | {r['kernel']:.0%} | {r['switch']:.0%} of all | {r['own']:.0%} |")
    sig = {4: close["herd signaled"], **{w: scale[f"herd signaled, {w} workers"] for w in counts}}
    per_wakeup = {w: r["arb_us"] / max(r["arb_wakeups"], 1e-9) for w, r in sig.items()}
    own = [r["own"] for r in samples.values()]
    sw = [r["switch"] for r in samples.values()]
    L += ["",
          "A signaled arbiter's wakeup costs " + ", ".join(f"{v:.0f} µs at {w} workers" for w, v in per_wakeup.items())
          + " (its µs per request over its wakeups per request, the tables above); in perf's samples its own code "
          f"stays at {min(own):.0%}-{max(own):.0%} and the kernel's switch and wakeup paths at {min(sw):.0%}-{max(sw):.0%}: "
          "the wakeup costs more with more processes, not the arbiter's work in it.", "",
          "**Keep-alive**, wrk -t1 -c64, one process per core against tokio's threads:", "",
          "| server | requests/s | p99 ms | CPU µs/request | serving tasks' run-queue wait, share of their time | mean wait before each time on a core |",
          "|---|---|---|---|---|---|"]
    for name, r in ka.items():
        L.append(f"| {name} | {r['rps']:,.0f} | {r['p99']:.2f} | {r['cpu_us']:.1f} | {r['wait_share']:.1%} | "
                 f"{r['wait_per_slice_us']:.0f} µs |")
    h1, y1 = ka["herd async, 1 worker"], ka["hyper, 1 thread"]
    L += ["",
          f"herd async with {cores} workers, round by round, against hyper with {cores} threads in the same round "
          "(the kernel gives each kept-alive connection to whichever worker accepts it first):", "",
          "| round | busiest worker's share of the workers' CPU | herd requests/s | herd p99 ms | "
          "involuntary and voluntary switches/request | hyper p99 ms |", "|---|---|---|---|---|---|"]
    for i, (h, y) in enumerate(zip(ka_runs[f"herd async, {cores} workers"], ka_runs[f"hyper, {cores} threads"])):
        L.append(f"| {i} | {h['busiest']:.0%} | {h['rps']:,.0f} | {h['p99']:.2f} | {h['switches']:.3f} | {y['p99']:.2f} |")
    pairs = list(zip(ka_runs[f"herd async, {cores} workers"], ka_runs[f"hyper, {cores} threads"]))
    alone = sorted(h["p99"] / y["p99"] for h, y in pairs if h["busiest"] >= 0.9)
    split = sorted(h["p99"] / y["p99"] for h, y in pairs if h["busiest"] < 0.9)
    median_ratio = lambda xs: f"{xs[len(xs) // 2]:.2f}x hyper's p99 of the same round (median)" if xs else "none"
    L += ["",
          f"Rounds where one worker held nearly every connection (busiest >= 90%): {len(alone)}, {median_ratio(alone)}; "
          f"rounds where the connections were split: {len(split)}, {median_ratio(split)}. Split, both workers and wrk "
          "want the 2 cores: a worker is switched out with its connections' requests in its hands and they "
          "wait for it, where tokio's threads share one poller and a thread switched out leaves its "
          "connections to the other. One worker against one thread: herd "
          f"{h1['cpu_us']:.1f} µs of CPU per request against hyper's {y1['cpu_us']:.1f} "
          f"({h1['cpu_us'] / y1['cpu_us']:.2f}x), p99 {h1['p99']:.2f} ms against {y1['p99']:.2f} ms — what "
          "herd's worker does per request on top of hyper's (the registry check, the header-read and "
          "keep-alive timers that bound a slow client, which the plain hyper server does not set, the event "
          "to the worker's main loop).", "", END, ""]
    return "\n".join(L)
