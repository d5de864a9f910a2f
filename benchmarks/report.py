"""Assembles benchmarks/RESULTS.md from the pieces benchmarks/run.sh measured.

Inputs: compare.sh's markdown and raw JSON lines (brokerd vs mosquitto), durability.sh's table,
and one JSON line per in-process benchmark. Output (stdout): the targets of the performance
issue with the measured value and whether it is met, the tables, and the capacity
extrapolation for a 16-core / 32 GiB node and a 10M-connection cluster, computed from the
measured figures so that a rerun updates it.
"""
import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path


def load_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Load:
    """Medians over repetitions of compare.sh's raw runs."""

    def __init__(self, runs):
        self.runs = [r for r in runs if "error" not in r]

    def median(self, broker, scenario, fn):
        values = []
        for r in self.runs:
            if r.get("broker") != broker or r.get("scenario") != scenario:
                continue
            try:
                v = fn(r)
            except (KeyError, ZeroDivisionError, TypeError):
                v = None
            if v is not None:
                values.append(v)
        return statistics.median(values) if values else None

    def cpu_per_m(self, broker, scenario):
        return self.median(broker, scenario, lambda r: r["broker_cpu_s"] / r["received"] * 1e6)

    def loss_pct(self, broker, scenario):
        return self.median(broker, scenario, lambda r: 100.0 * r["lost"] / max(r["expected"], 1))

    def p99_ms(self, broker, scenario):
        return self.median(broker, scenario, lambda r: r["latency_p99_us"] / 1000)

    def rss_per_conn_kib(self, broker, scenario="idle18k"):
        return self.median(broker, scenario,
                           lambda r: (r["broker_hwm_kb"] - r["broker_base_kb"]) / r["connect_ok"])

    def cpu_per_conn_us(self, broker, scenario="connect18k"):
        return self.median(broker, scenario, lambda r: r["broker_cpu_s"] / r["connect_ok"] * 1e6)

    def kernel_per_conn_kib(self, broker, scenario="idle18k"):
        return self.median(broker, scenario, lambda r: r["kernel_slab_kb"] / 2 / r["connect_ok"])


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def micro_by_name(lines):
    return {m.get("bench"): flatten(m) for m in lines}


def first(d, *keys):
    for k in keys:
        if d and d.get(k) is not None:
            return d[k]
    return None


def fmt(v, nd=2):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def targets(load, micro):
    rows = []

    def le(a, b):
        return None if a is None or b is None else a <= b

    def both(*oks):
        return None if any(o is None for o in oks) else all(oks)

    flashmq = {"p2p_q0": 0.64, "p2p_q1": 1.44, "fanout_q0": 1.30}
    for sc, name in [("p2p_q0", "QoS 0 p2p 16->16 flat out"), ("p2p_q1", "QoS 1 p2p 16->16 flat out"),
                     ("fanout_q0", "QoS 0 fan-out 1->1,000 flat out")]:
        ours, mq, loss = load.cpu_per_m("brokerd", sc), load.cpu_per_m("mosquitto", sc), load.loss_pct("brokerd", sc)
        ratio = mq / ours if ours and mq else None
        ok = both(le(ours, flashmq[sc]), None if ratio is None else ratio >= 6, None if loss is None else loss == 0)
        rows.append((f"{name}: broker CPU-s per M delivered <= {flashmq[sc]} (FlashMQ's), >= 6x below mosquitto, zero loss",
                     f"{fmt(ours)} (mosquitto {fmt(mq)}, {fmt(ratio, 1)}x below; loss {fmt(loss)} %)", verdict(ok)))
    sc = "latency_q1_10k"
    ours, mq = load.cpu_per_m("brokerd", sc), load.cpu_per_m("mosquitto", sc)
    p_ours, p_mq = load.p99_ms("brokerd", sc), load.p99_ms("mosquitto", sc)
    rows.append(("QoS 1 at 10K msg/s: CPU per message <= half of mosquitto's",
                 f"{fmt(ours)} vs {fmt(mq)} CPU-s per M ({fmt(ours / mq if ours and mq else None)}x)",
                 verdict(le(ours, mq / 2 if mq else None))))
    rows.append(("QoS 1 at 10K msg/s: p99 latency no worse than mosquitto's",
                 f"{fmt(p_ours)} ms vs {fmt(p_mq)} ms", verdict(le(p_ours, p_mq))))
    ours, mq = load.rss_per_conn_kib("brokerd"), load.rss_per_conn_kib("mosquitto")
    rows.append(("RSS per idle connection with one subscription (18,000 connections) <= mosquitto's",
                 f"{fmt(ours)} KiB vs {fmt(mq)} KiB", verdict(le(ours, mq))))
    ours, mq = load.cpu_per_conn_us("brokerd"), load.cpu_per_conn_us("mosquitto")
    rows.append(("CPU per connect (connect, subscribe, disconnect) <= mosquitto's",
                 f"{fmt(ours, 1)} us vs {fmt(mq, 1)} us", verdict(le(ours, mq))))
    s = micro.get("session_memory_bench")
    per_session = first(s, "rss_per_session_bytes", "heap_per_session_bytes")
    rows.append(("In-process: <= 2 KiB per idle virtual session (1M sessions, one subscription each)",
                 f"{fmt(per_session, 0)} B (at {fmt(first(s, 'sessions'), 0)} sessions)", verdict(le(per_session, 2048))))
    t = micro.get("topic_index_bench")
    per_sub = first(t, "rss_bytes_per_sub_excl_keys")
    rows.append(("In-process: <= 100 B per subscription plus the topic bytes (10M subscriptions)",
                 f"{fmt(per_sub, 1)} B plus {fmt(first(t, 'index_key_bytes_per_sub'), 1)} B of topic text kept by the index"
                 f" (at {fmt(first(t, 'subscriptions'), 0)}; a filter averages {fmt(first(t, 'avg_filter_bytes'), 1)} B)",
                 verdict(le(per_sub, 100))))
    match_ns = first(t, "match_exact_ns")
    f = micro.get("fanout_bench")
    rows.append(("In-process: one message fanned out to 1M sessions (no target; measured)",
                 f"QoS 0 {fmt(first(f, 'qos0.seconds'))} s, {fmt(first(f, 'qos0.cpu_s_per_million_deliveries'))} CPU-s per M; "
                 f"QoS 1 {fmt(first(f, 'qos1.seconds'))} s, {fmt(first(f, 'qos1.cpu_s_per_million_deliveries'))} CPU-s per M"
                 f" (at {fmt(first(f, 'sessions'), 0)} sessions)", ""))
    rows.append(("In-process: topic match < 1 microsecond (10M subscriptions)",
                 f"{fmt(match_ns, 0)} ns exact, {fmt(first(t, 'match_wildcard_ns'), 0)} ns with wildcard subscribers",
                 verdict(None if match_ns is None else match_ns < 1000)))
    return rows


def capacity(load, micro):
    """A 16-core / 32 GiB node and a 10M-connection cluster, from the measured figures."""
    rss = load.rss_per_conn_kib("brokerd")
    kernel = load.kernel_per_conn_kib("brokerd")
    conn_us = load.cpu_per_conn_us("brokerd")
    q1 = load.cpu_per_m("brokerd", "p2p_q1")
    t = micro.get("topic_index_bench")
    per_sub = first(t, "rss_bytes_per_sub")
    topic = first(t, "index_key_bytes_per_sub") or 0
    if None in (rss, kernel, conn_us, q1):
        return "Not enough measurements for the extrapolation (run the full benchmark).\n"
    ram_gib, reserve_gib, cores = 32, 4, 16
    workers = cores - 1  # the default: one core is left to the kernel's network work
    per_conn_kib = rss + kernel
    by_memory = (ram_gib - reserve_gib) * 1024 * 1024 / per_conn_kib
    bar = 500_000
    mem_at_bar_gib = bar * per_conn_kib / 1024 / 1024
    storm_s = bar * conn_us / 1e6 / workers
    telemetry_rate = bar / 10  # one report per vehicle every 10 s
    telemetry_cores = telemetry_rate * q1 / 1e6
    peak_msgs = workers / q1 * 1e6
    out = []
    out.append("Inputs, all measured above on this machine: user-space RSS per idle connection "
               f"{rss:.2f} KiB, kernel socket memory per connection {kernel:.2f} KiB (slab growth, broker side), "
               f"broker CPU per connection {conn_us:.1f} us (connect + subscribe + disconnect), "
               f"{q1:.2f} broker CPU-s per million QoS 1 messages delivered (p2p)"
               + (f", {per_sub:.0f} B per subscription in the topic index ({topic:.0f} B of it topic text)" if per_sub else "")
               + ". Assumptions: the per-connection and per-message costs stay linear with the number of workers "
               "(workers share nothing on the message path but the read-mostly topic index), 4 GiB are kept for the "
               "OS and socket buffers under load, and a vehicle reports telemetry every 10 s.\n")
    out.append("| 16 cores / 32 GiB node | figure |")
    out.append("|---|---:|")
    out.append(f"| memory per idle vehicle (user + kernel) | {per_conn_kib:.2f} KiB |")
    out.append(f"| connections that fit in 28 GiB | {by_memory / 1e6:.1f} M |")
    out.append(f"| memory for 500,000 vehicles | {mem_at_bar_gib:.1f} GiB |")
    out.append(f"| all 500,000 reconnecting at once (CPU of {workers} workers) | {storm_s:.1f} s |")
    out.append(f"| 500,000 vehicles reporting every 10 s (50,000 msg/s QoS 1) | {telemetry_cores:.2f} cores |")
    out.append(f"| QoS 1 deliveries per second with all {workers} workers busy | {peak_msgs / 1e6:.1f} M |")
    out.append("")
    nodes_10m = math.ceil(10_000_000 / bar)
    routes_gib = 10_000_000 * (per_sub or 0) / 1024 ** 3
    out.append(f"A 10M-connection cluster at 500,000 vehicles per node needs {nodes_10m} nodes, "
               f"{nodes_10m + math.ceil(nodes_10m / 4)} with a quarter spare so that a node's vehicles can reconnect "
               "elsewhere when it dies; memory is not the limit (each node could hold "
               f"{by_memory / 1e6:.1f} M idle vehicles), CPU for reconnect storms and traffic is. With persistent "
               "sessions replicated to one backup node (CLUSTER.md), each node also holds its share of backups: about "
               f"{mem_at_bar_gib:.1f} GiB more per node at the bar. Routes are replicated to every node, one entry per "
               "filter per node: 10M unique filters cost "
               + (f"{routes_gib:.2f} GiB per node at the measured bytes per subscription." if per_sub else
                  "the measured bytes per subscription times 10M per node.")
               + " etcd holds only membership (O(nodes) keys).\n")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--load", required=True)
    ap.add_argument("--load-runs", required=True)
    ap.add_argument("--durability", required=True)
    ap.add_argument("--micro", required=True)
    ap.add_argument("--quick", default="0")
    a = ap.parse_args()
    load = Load(load_jsonl(a.load_runs))
    micro = micro_by_name(load_jsonl(a.micro))
    root = Path(__file__).resolve().parent.parent
    rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip() or "unknown"
    out = ["# Benchmark results\n",
           f"Produced by `bash benchmarks/run.sh{' --quick' if a.quick == '1' else ''}` at source {rev}: every figure "
           "below comes from that one command (Release build, Debian's mosquitto as the peer in the same run)."
           + (" **Quick mode: sizes and durations are cut; these figures only show that everything runs.**"
              if a.quick == "1" else "") + "\n",
           "## Targets\n", "| target | measured | |", "|---|---|---|"]
    out += [f"| {t} | {m} | {v} |" for t, m, v in targets(load, micro)]
    out.append("\n## brokerd vs mosquitto over loopback\n")
    text = Path(a.load).read_text()
    out.append(text.split("\n", 1)[1] if text.startswith("# ") else text)
    out.append("\n## Durability's cost (benchmarks/load/durability.sh)\n")
    out.append("QoS 1 p2p, 16 publishers -> 16 persistent subscribers (clean session 0), flat out, window 32, "
               "100-byte payloads; brokerd with its default worker count, modes alternating within a repetition.\n")
    out.append(Path(a.durability).read_text())
    out.append("\n## In-process benchmarks (no sockets)\n")
    for name, m in micro.items():
        out.append(f"**{name}**\n")
        out.append("| figure | value |")
        out.append("|---|---:|")
        out += [f"| {k} | {fmt(v) if not isinstance(v, list) else ', '.join(fmt(x) for x in v)} |"
                for k, v in m.items() if k != "bench"]
        out.append("")
    out.append("## Capacity: a 16-core node and a 10M-connection cluster\n")
    out.append(capacity(load, micro))
    out.append("TLS costs (handshake CPU, per-connection memory of an mbedTLS context) are not in these figures; "
               "they come with TLS.\n")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
