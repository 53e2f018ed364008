"""LangGraph's checkpoint savers on the bench's workload, for a comparison in the same run.

The bench (`cargo run --release -p bench -- --peer`) runs this script with the workflow
snapshot it wrote itself, so both sides store the same data: the workflow's context and its
steps become two channels of a LangGraph checkpoint, both changed before every put, as one
step of an orchestrator changes them. Prints one JSON line per operation with the raw
latencies in microseconds; the bench summarises them with its own percentiles.

Needs `langgraph-checkpoint-sqlite`, `langgraph-checkpoint-postgres` and `psycopg[binary]`
(bench/peer/setup.sh installs them into a virtualenv).
"""

import argparse
import copy
import json
import os
import sqlite3
import sys
import time
import uuid


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", required=True,
                        choices=["sqlite-memory", "sqlite-file", "postgres"])
    parser.add_argument("--snapshot", required=True, help="JSON file: the workflow snapshot")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--folder", help="folder for the SQLite file")
    parser.add_argument("--url", help="Postgres URL")
    return parser.parse_args()


def emit(backend, op, samples, **extra):
    line = {"kind": "peer", "backend": backend, "op": op, "micros": samples}
    line.update(extra)
    print(json.dumps(line), flush=True)


class Workload:
    """The snapshot's context and steps as channels, changed the way the bench changes them."""

    def __init__(self, saver, snapshot):
        self.saver = saver
        self.context = copy.deepcopy(snapshot.get("context", {}))
        self.steps = copy.deepcopy(snapshot.get("steps", []))
        self.versions = {"context": None, "steps": None}
        self.thread = "bench-" + uuid.uuid4().hex
        self.parent = None
        self.iteration = 0

    def next_checkpoint(self):
        from langgraph.checkpoint.base import empty_checkpoint

        self.iteration += 1
        if isinstance(self.context, dict):
            self.context["iteration"] = self.iteration
        if self.steps:
            # The state's steps: a list, or an object keyed by step id.
            keys = list(self.steps) if isinstance(self.steps, dict) else range(len(self.steps))
            step = self.steps[list(keys)[self.iteration % len(self.steps)]]
            if isinstance(step, dict) and isinstance(step.get("outputs"), dict):
                step["outputs"]["iteration"] = self.iteration
        new_versions = {}
        for channel in ("context", "steps"):
            self.versions[channel] = self.saver.get_next_version(self.versions[channel], None)
            new_versions[channel] = self.versions[channel]
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {
            "context": copy.deepcopy(self.context),
            "steps": copy.deepcopy(self.steps),
        }
        checkpoint["channel_versions"] = dict(self.versions)
        return checkpoint, new_versions

    def config(self, checkpoint_id=None):
        configurable = {"thread_id": self.thread, "checkpoint_ns": ""}
        if checkpoint_id is not None:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    def put(self, checkpoint, new_versions):
        saved = self.saver.put(self.config(self.parent), checkpoint,
                               {"source": "loop", "step": self.iteration}, new_versions)
        self.parent = saved["configurable"]["checkpoint_id"]
        return self.parent


def measure(saver, backend, snapshot, iterations, warmup, **extra):
    work = Workload(saver, snapshot)
    puts, ids, expected = [], [], None
    for index in range(warmup + iterations):
        checkpoint, new_versions = work.next_checkpoint()
        started = time.perf_counter_ns()
        checkpoint_id = work.put(checkpoint, new_versions)
        elapsed = (time.perf_counter_ns() - started) / 1000
        if index >= warmup:
            puts.append(elapsed)
            ids.append(checkpoint_id)
        expected = checkpoint["channel_values"]
    latest, by_id = [], []
    for index in range(warmup + iterations):
        started = time.perf_counter_ns()
        found = saver.get_tuple(work.config())
        elapsed = (time.perf_counter_ns() - started) / 1000
        if index >= warmup:
            latest.append(elapsed)
    if found is None or found.checkpoint["channel_values"] != expected:
        sys.exit("the latest checkpoint read back differs from the one written last")
    for index in range(warmup + iterations):
        wanted = ids[index % len(ids)]
        started = time.perf_counter_ns()
        found = saver.get_tuple(work.config(wanted))
        elapsed = (time.perf_counter_ns() - started) / 1000
        if index >= warmup:
            by_id.append(elapsed)
        if found is None or found.checkpoint["id"] != wanted:
            sys.exit("a checkpoint read by id came back wrong")
    emit(backend, "peer: LangGraph put", puts, **extra)
    emit(backend, "peer: LangGraph get_tuple (latest)", latest, **extra)
    emit(backend, "peer: LangGraph get_tuple (by id)", by_id, **extra)


def sqlite_pragmas(conn):
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
        conn.execute("PRAGMA synchronous").fetchone()[0], "?")
    return f"journal_mode={journal} synchronous={synchronous}"


def run_sqlite(args, snapshot):
    from langgraph.checkpoint.sqlite import SqliteSaver

    target = ":memory:"
    if args.backend == "sqlite-file":
        target = os.path.join(args.folder, "langgraph.sqlite")
    with SqliteSaver.from_conn_string(target) as saver:
        saver.setup()
        measure(saver, args.backend, snapshot, args.iterations, args.warmup,
                settings=sqlite_pragmas(saver.conn))


def run_postgres(args, snapshot):
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

    schema = "bench_langgraph_" + uuid.uuid4().hex[:12]
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = args.url + ("&" if "?" in args.url else "?") + \
                f"options=-csearch_path%3D{schema}"
            with PostgresSaver.from_conn_string(url) as saver:
                saver.setup()
                commit = saver.conn.execute("SHOW synchronous_commit").fetchone()
                measure(saver, args.backend, snapshot, args.iterations, args.warmup,
                        settings=f"autocommit, synchronous_commit={commit['synchronous_commit']}")
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main():
    args = parse_args()
    with open(args.snapshot, encoding="utf-8") as file:
        snapshot = json.load(file)
    if args.backend == "postgres":
        run_postgres(args, snapshot)
    else:
        run_sqlite(args, snapshot)


if __name__ == "__main__":
    main()
