#!/usr/bin/env python3
"""A small model-serving API for the oxmon demo stack (standard library only).

It gives oxmon-sidecar something to watch on first start:
- GET /health answers {"status":"UP","checks":{"database":"UP","cache":"UP","model":"UP"}}
  (a component flips to DOWN now and then, so the health panels move);
- every request is written as one JSON access-log line to $LOG_PATH
  (method, path, status, duration_ms, level, trace_id; now and then an
  {"event":"login_failed"} line);
- StatsD packets to $STATSD_ADDR: model.inference.duration (timer, ms),
  model.queue.length (gauge), model.accuracy (gauge, percent);
- a request with the header X-Demo-Fail: 1 fails on purpose (/api/predict
  answers 500, /api/login logs a failed login), so tests need not wait for
  the random errors;
- a traffic loop calls $TRAFFIC_URL (the sidecar's HTTP tap in front of this
  app) so the request-rate, error and latency panels have data.

Environment: LISTEN (default 0.0.0.0:8000), LOG_PATH (/var/log/app/access.log),
STATSD_ADDR (oxmon-sidecar:9125), TRAFFIC_URL (empty: no traffic loop),
TRAFFIC_INTERVAL seconds (0.5), HEALTH_FLAP_PROBABILITY (0.01: the chance
that a component reports DOWN for one 5 s period).
"""

import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN = os.environ.get("LISTEN", "0.0.0.0:8000")
LOG_PATH = os.environ.get("LOG_PATH", "/var/log/app/access.log")
STATSD_ADDR = os.environ.get("STATSD_ADDR", "oxmon-sidecar:9125")
TRAFFIC_URL = os.environ.get("TRAFFIC_URL", "")
TRAFFIC_INTERVAL = float(os.environ.get("TRAFFIC_INTERVAL", "0.5"))
HEALTH_FLAP_PROBABILITY = float(os.environ.get("HEALTH_FLAP_PROBABILITY", "0.01"))

_log_lock = threading.Lock()
_state = {"queue": 5, "components": {"database": "UP", "cache": "UP", "model": "UP"}}


def log_line(record):
    """Appends one JSON line to the access log (opened per line, so a
    rotation by rename or truncation is followed)."""
    record.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with _log_lock:
        try:
            with open(LOG_PATH, "a", encoding="utf-8") as f:
                f.write(line)
        except OSError as e:
            print(f"access log {LOG_PATH}: {e}", file=sys.stderr)


class StatsD:
    """Fire-and-forget StatsD over UDP; a name that does not resolve yet
    (the sidecar still starting) is retried at the next packet."""

    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self.target = (host or "127.0.0.1", int(port or 9125))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, *lines):
        try:
            self.sock.sendto("\n".join(lines).encode(), self.target)
        except OSError:
            pass


statsd = StatsD(STATSD_ADDR)


class Handler(BaseHTTPRequestHandler):
    server_version = "oxmon-demo-app/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the JSON access log replaces stderr lines
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        start = time.monotonic()
        trace_id = uuid.uuid4().hex
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if path == "/health":
            comps = _state["components"]
            status = "UP" if all(v == "UP" for v in comps.values()) else "DOWN"
            code, body = (200 if status == "UP" else 503), {"status": status, "checks": dict(comps)}
        elif path == "/api/predict":
            # Inference: 20-80 ms, slower when the queue is long; 0.5% errors. The
            # demo stays under the shipped thresholds (p95 100 ms, 1% 5xx,
            # queue 50) so a fresh stack shows no firing alert.
            infer = random.uniform(0.02, 0.06) * (1 + _state["queue"] / 100)
            time.sleep(infer)
            statsd.send(f"model.inference.duration:{infer * 1000:.1f}|ms")
            if random.random() < 0.005 or self.headers.get("X-Demo-Fail"):
                code, body = 500, {"error": "model backend failed"}
            else:
                code, body = 200, {"label": random.choice(["cat", "dog"]), "score": round(random.random(), 3)}
        elif path.startswith("/api/users/"):
            time.sleep(random.uniform(0.001, 0.02))
            code, body = (404, {"error": "no such user"}) if random.random() < 0.05 else (200, {"id": path.rsplit("/", 1)[-1]})
        elif path == "/api/login":
            if random.random() < 0.1 or self.headers.get("X-Demo-Fail"):
                log_line({"level": "warn", "event": "login_failed", "user": f"user{random.randint(1, 20)}", "trace_id": trace_id})
                code, body = 401, {"error": "bad credentials"}
            else:
                code, body = 200, {"token": "demo"}
        elif path == "/":
            code, body = 200, {"service": "oxmon demo app"}
        else:
            code, body = 404, {"error": "not found"}
        self._send(code, body)
        log_line({
            "level": "error" if code >= 500 else "info",
            "method": self.command,
            "path": path,
            "status": code,
            "duration_ms": round((time.monotonic() - start) * 1000, 3),
            "trace_id": trace_id,
        })

    do_GET = _handle
    do_POST = _handle


def model_gauges():
    """Queue length and accuracy as a model server would report them."""
    while True:
        _state["queue"] = max(0, min(40, _state["queue"] + random.randint(-3, 3)))
        accuracy = random.uniform(88.0, 97.0)
        statsd.send(f"model.queue.length:{_state['queue']}|g", f"model.accuracy:{accuracy:.2f}|g")
        # Now and then one component is briefly down.
        comps = _state["components"]
        for name in comps:
            comps[name] = "DOWN" if random.random() < HEALTH_FLAP_PROBABILITY else "UP"
        time.sleep(5)


def traffic():
    """Requests through the sidecar's tap (a mix of routes, methods, errors)."""
    paths = [("POST", "/api/predict")] * 6 + [("GET", "/api/users/%d")] * 3 + [("POST", "/api/login"), ("GET", "/nope")]
    while True:
        method, path = random.choice(paths)
        if "%d" in path:
            path = path % random.randint(1, 500)
        req = urllib.request.Request(TRAFFIC_URL.rstrip("/") + path, method=method, data=b"{}" if method == "POST" else None)
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except urllib.error.HTTPError:
            pass
        except OSError:
            time.sleep(2)  # the tap is not up yet
        time.sleep(TRAFFIC_INTERVAL)


def main():
    host, _, port = LISTEN.rpartition(":")
    os.makedirs(os.path.dirname(LOG_PATH) or ".", exist_ok=True)
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    threading.Thread(target=model_gauges, daemon=True).start()
    if TRAFFIC_URL:
        threading.Thread(target=traffic, daemon=True).start()
    print(f"demo app on {LISTEN}, access log {LOG_PATH}, StatsD to {STATSD_ADDR}, traffic via {TRAFFIC_URL or '-'}", flush=True)
    # As PID 1 in a container there is no default SIGTERM action: exit cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
