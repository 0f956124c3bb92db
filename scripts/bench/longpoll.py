#!/usr/bin/env python3
"""Long-poll delivery benchmark for scripts/bench.sh (standard library only).

Parks N clients in /chat/sync (one keep-alive HTTP/1.1 connection each, re-issuing the sync with
the returned `next` as soon as one returns), waits until the app holds all of them, records the
app workers' thread counts and memory, then sends 1:1 messages at a fixed rate over a pool of
sender connections, each from the receiver's seeded friend to one of the parked receivers (round
robin), and measures for every message

    delivery latency = arrival of the receiver's sync response that carries it
                       - the moment its sendMsg request was issued.

The clients file has one line per receiver: "receiver_token receiver_id cursor sender_token
sender_id", cursor being the receiver's user_event_cursors.last_cursor (0 if none).

Prints a human-readable report on stderr and one machine-readable line on stdout:
    LONGPOLL clients=… parked=… held_fds=… sent=… send_errors=… delivered=… duplicates=… p50_ms=… p99_ms=…
             max_ms=… rate=… threads_before=a,b threads_parked=… threads_sending=… rss_before_kib=…
             rss_parked_kib=… rss_sending_kib=… sync_errors=… loop_lag_max_ms=…
             client_cpu_s=… p99_per_second_ms=a,b,…
"""

import argparse
import asyncio
import json
import os
import resource
import sys
import time

now = time.monotonic


def log(message):
    print(f"[longpoll] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 client on asyncio streams.

class HTTPError(Exception):
    pass


class Connection:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def send(self, method, path, token, body=b""):
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive",
                f"Authorization: Bearer {token}"]
        if method == "POST":
            head.append("Content-Type: application/x-www-form-urlencoded")
            head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    async def receive(self):
        """(status, body); closes the connection when the server asks for it."""
        line = await self.reader.readline()
        if not line:
            raise HTTPError("connection closed")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HTTPError(f"bad status line {line!r}")
        status = int(parts[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if not line:
                raise HTTPError("connection closed in headers")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            body = bytearray()
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readline()
            body = bytes(body)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            self.close()
        return status, body


# ---------------------------------------------------------------------------------------------
# The app's workers, from /proc.

def workers(supervisor):
    try:
        with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
            return sorted(int(p) for p in f.read().split())
    except OSError:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == supervisor:
                            pids.append(int(entry))
                except (OSError, IndexError, ValueError):
                    pass
        return sorted(pids)


def status_field(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def snapshot(supervisor):
    """{pid: (threads, rss_kib, open_fds)} of the supervisor's children."""
    result = {}
    for pid in workers(supervisor):
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            fds = 0
        result[pid] = (status_field(pid, "Threads"), status_field(pid, "VmRSS"), fds)
    return result


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def threads_of(snap):
    return ",".join(str(snap[pid][0]) for pid in sorted(snap)) or "-"


def rss_of(snap):
    return sum(v[1] for v in snap.values())


def fds_of(snap):
    return sum(v[2] for v in snap.values())


# ---------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, clients):
        self.args = args
        self.clients = clients                     # [(rtoken, rid, cursor, stoken, sid)]
        self.stopping = False
        self.sync_responses = 0
        self.outstanding = 0                       # syncs written and not answered yet
        self.sync_errors = 0
        self.last_sync_response = now()
        self.issued = {}                           # message number -> issue time
        self.delivered = {}                        # message number -> arrival time
        self.duplicates = 0
        self.send_ok = 0
        self.send_errors = 0
        self.first_issue = self.last_done = None
        self.lag_max = 0.0
        self.conns = []
        # Message texts are "lp <run id> <number>": messages of an earlier run are not counted.
        self.tag = f"lp {args.run_id} "

    async def parked_client(self, index, opened):
        token, _, cursor, _, _ = self.clients[index]
        since = cursor
        conn = Connection(self.args.host, self.args.port)
        self.conns.append(conn)
        try:
            await conn.open()
        finally:
            opened.release()
        while not self.stopping:
            try:
                if conn.writer is None:
                    await conn.open()
                conn.send("GET", f"/chat/sync?since={since}&timeout={self.args.timeout}", token)
                self.outstanding += 1
                try:
                    status, body = await conn.receive()
                finally:
                    self.outstanding -= 1
            except (OSError, HTTPError, asyncio.IncompleteReadError, ValueError) as error:
                if self.stopping:
                    return
                self.sync_errors += 1
                if self.sync_errors <= 5:
                    log(f"sync of client {index}: {error}")
                conn.close()
                await asyncio.sleep(0.5)
                continue
            arrived = now()
            self.sync_responses += 1
            self.last_sync_response = arrived
            if status != 200:
                self.sync_errors += 1
                if self.sync_errors <= 5:
                    log(f"sync of client {index}: HTTP {status} {body[:200]!r}")
                await asyncio.sleep(0.5)
                continue
            try:
                data = json.loads(body)["data"]
            except (ValueError, KeyError, TypeError):
                self.sync_errors += 1
                continue
            for event in data.get("events") or []:
                if event.get("type") != "message":
                    continue
                content = ((event.get("message") or {}).get("content")) or ""
                if content.startswith(self.tag):
                    number = int(content[len(self.tag):])
                    if number in self.delivered:
                        self.duplicates += 1
                    else:
                        self.delivered[number] = arrived
            since = data.get("next", since)

    async def sender(self, queue):
        conn = Connection(self.args.host, self.args.port)
        self.conns.append(conn)
        while True:
            number = await queue.get()
            if number is None:
                return
            rtoken, rid, _, stoken, _ = self.clients[number % len(self.clients)]
            body = (f"destId={rid}&destType=1&msgType=1&content=lp+{self.args.run_id}+{number}"
                    f"&clientMsgId=lp-{self.args.run_id}-{number}").encode()
            try:
                if conn.writer is None:
                    await conn.open()
                issued = now()
                self.issued[number] = issued
                if self.first_issue is None:
                    self.first_issue = issued
                conn.send("POST", "/chat/sendMsg", stoken, body)
                status, answer = await conn.receive()
                self.last_done = now()
                if status == 200 and (b'"code":1,' in answer or b'"code":1}' in answer):
                    self.send_ok += 1
                else:
                    self.send_errors += 1
                    self.issued.pop(number, None)
                    if self.send_errors <= 5:
                        log(f"sendMsg {number}: HTTP {status} {answer[:200]!r}")
            except (OSError, HTTPError, asyncio.IncompleteReadError, ValueError) as error:
                self.send_errors += 1
                self.issued.pop(number, None)
                if self.send_errors <= 5:
                    log(f"sendMsg {number}: {error}")
                conn.close()

    async def lag_monitor(self):
        while not self.stopping:
            before = now()
            await asyncio.sleep(0.01)
            self.lag_max = max(self.lag_max, now() - before - 0.01)

    async def run(self):
        args = self.args
        supervisor = args.supervisor_pid
        n = len(self.clients)
        snap_before = snapshot(supervisor)
        log(f"workers before: pids {sorted(snap_before)}, threads {threads_of(snap_before)}, "
            f"RSS {rss_of(snap_before) / 1024:.1f} MiB, open fds {fds_of(snap_before)}")

        # 1. Connect and park everybody (at most connect_batch connections being opened at once,
        #    within the listen backlog).
        started = now()
        opened = asyncio.Semaphore(args.connect_batch)
        tasks = []
        for index in range(n):
            await opened.acquire()
            tasks.append(asyncio.create_task(self.parked_client(index, opened)))
        log(f"{n} sync connections opened in {now() - started:.1f} s; waiting until the app holds all of them")
        # Parked = written, not answered, and held by the app: each parked sync keeps one FastCGI
        # connection (an open fd) in a worker. All are parked when every client's sync is
        # outstanding, none has come back for a second, and the workers hold about that many more
        # fds than before, a number that has stopped growing. ("About": the idle kept-alive
        # connections from nginx, counted before, may now carry syncs too: up to nginx workers x
        # keepalive, a few.)
        deadline = now() + args.park_timeout
        held, stable_since = 0, now()
        while now() < deadline:
            await asyncio.sleep(0.25)
            fds = fds_of(snapshot(supervisor)) - fds_of(snap_before)
            if fds != held:
                held, stable_since = fds, now()
            if (self.outstanding == n and held >= n - args.keepalive_slack and now() - stable_since > 1.0
                    and now() - self.last_sync_response > 1.0):
                break
        parked = self.outstanding if held >= self.outstanding - args.keepalive_slack else held
        log(f"parked: {parked} of {n} after {now() - started:.1f} s ({self.outstanding} syncs outstanding, "
            f"the workers hold {held} more fds than before; {self.sync_responses} syncs came back meanwhile)")
        await asyncio.sleep(0.5)
        snap_parked = snapshot(supervisor)
        log(f"workers while parked: threads {threads_of(snap_parked)}, RSS {rss_of(snap_parked) / 1024:.1f} MiB, "
            f"open fds {fds_of(snap_parked)}")

        # 2. Send at the fixed rate over the sender pool.
        total = int(args.rate * args.duration)
        queue = asyncio.Queue()
        senders = [asyncio.create_task(self.sender(queue)) for _ in range(args.senders)]
        lag = asyncio.create_task(self.lag_monitor())
        threads_max = {pid: v[0] for pid, v in snap_parked.items()}
        rss_peak = rss_of(snap_parked)
        t0 = now() + 0.1
        next_sample = t0
        log(f"sending {total} messages at {args.rate}/s over {args.senders} connections")
        for number in range(total):
            due = t0 + number / args.rate
            delay = due - now()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(number)
            if now() >= next_sample:
                snap = snapshot(supervisor)
                for pid, v in snap.items():
                    threads_max[pid] = max(threads_max.get(pid, 0), v[0])
                rss_peak = max(rss_peak, rss_of(snap))
                next_sample = now() + 0.5
        for _ in senders:
            queue.put_nowait(None)
        await asyncio.gather(*senders)
        send_end = now()
        # 3. Wait for the last deliveries.
        drain_deadline = now() + args.drain
        while now() < drain_deadline and len(self.delivered) < len(self.issued):
            await asyncio.sleep(0.05)
        snap_after = snapshot(supervisor)
        for pid, v in snap_after.items():
            threads_max[pid] = max(threads_max.get(pid, 0), v[0])
        rss_peak = max(rss_peak, rss_of(snap_after))
        self.stopping = True
        lag.cancel()
        for conn in self.conns:
            conn.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, lag, return_exceptions=True)

        latencies = sorted((self.delivered[k] - t) * 1000 for k, t in self.issued.items() if k in self.delivered)
        lost = sum(1 for k in self.issued if k not in self.delivered)

        def pct(p):
            return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))] if latencies else float("nan")

        # p99 per second of sending (by issue time): shows when a backlog builds up.
        buckets = {}
        for k, t in self.issued.items():
            if k in self.delivered:
                buckets.setdefault(int(t - t0), []).append((self.delivered[k] - t) * 1000)
        timeline = []
        for second in range(int(args.duration) + 1):
            values = sorted(buckets.get(second, []))
            if values:
                timeline.append(f"{values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]:.0f}")
        elapsed = (self.last_done or send_end) - (self.first_issue or t0)
        rate = self.send_ok / elapsed if elapsed > 0 else 0.0
        threads_sending = ",".join(str(threads_max[pid]) for pid in sorted(threads_max)) or "-"
        log(f"sent {self.send_ok} ({self.send_errors} failed) at {rate:.0f}/s; delivered {len(latencies)}, "
            f"not delivered {lost}, repeated {self.duplicates}; latency p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms, "
            f"max {(latencies[-1] if latencies else float('nan')):.1f} ms; event-loop lag max {self.lag_max * 1000:.1f} ms, "
            f"client CPU {cpu_seconds():.1f} s; p99 per second of sending {', '.join(timeline)} ms")
        print(" ".join([
            "LONGPOLL",
            f"clients={n}", f"parked={parked}", f"held_fds={held}", f"sent={self.send_ok}", f"send_errors={self.send_errors}",
            f"delivered={len(latencies)}", f"duplicates={self.duplicates}",
            f"p50_ms={pct(50):.2f}", f"p99_ms={pct(99):.2f}",
            f"max_ms={(latencies[-1] if latencies else float('nan')):.2f}",
            f"rate={rate:.1f}", f"target_rate={args.rate}", f"seconds={elapsed:.2f}",
            f"threads_before={threads_of(snap_before)}", f"threads_parked={threads_of(snap_parked)}",
            f"threads_sending={threads_sending}",
            f"rss_before_kib={rss_of(snap_before)}", f"rss_parked_kib={rss_of(snap_parked)}",
            f"rss_sending_kib={rss_peak}", f"sync_errors={self.sync_errors}",
            f"loop_lag_max_ms={self.lag_max * 1000:.1f}", f"client_cpu_s={cpu_seconds():.1f}",
            f"p99_per_second_ms={','.join(timeline) or '-'}",
        ]), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients-file", required=True)
    parser.add_argument("--supervisor-pid", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--timeout", type=int, default=30, help="the sync's timeout parameter (s)")
    parser.add_argument("--park-timeout", type=float, default=20, help="how long to wait for all to park (s)")
    parser.add_argument("--drain", type=float, default=5, help="how long to wait for the last deliveries (s)")
    parser.add_argument("--connect-batch", type=int, default=100)
    parser.add_argument("--keepalive-slack", type=int, default=32,
                        help="how many fewer new fds than parked syncs still count as all parked "
                             "(nginx's idle kept-alive upstream connections)")
    parser.add_argument("--run-id", default=str(int(time.time())))
    args = parser.parse_args()

    clients = []
    with open(args.clients_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5:
                clients.append((parts[0], int(parts[1]), int(parts[2]), parts[3], int(parts[4])))
    if not clients:
        sys.exit("longpoll.py: no clients in " + args.clients_file)

    # One socket per parked client and per sender, plus a margin.
    need = len(clients) + args.senders + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(max(need, soft), hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < need:
            sys.exit(f"longpoll.py: RLIMIT_NOFILE hard limit {hard} is below the {need} sockets needed")

    asyncio.run(Bench(args, clients).run())


if __name__ == "__main__":
    main()
