#!/usr/bin/env python3
"""The cost model of nvidia-smi based exporters, as a bench peer: every
scrape runs `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`
once and serves the values as gauges. Needs nvidia-smi (a GPU machine).
Usage: nvidia-smi-exporter.py PORT"""

import http.server
import subprocess
import sys

FIELDS = [
    "index", "uuid", "name", "pci.bus_id", "driver_version", "vbios_version",
    "compute_mode", "persistence_mode", "utilization.gpu", "utilization.memory",
    "memory.used", "memory.free", "memory.total", "temperature.gpu",
    "temperature.memory", "power.draw", "power.limit", "enforced.power.limit",
    "clocks.gr", "clocks.sm", "clocks.mem", "clocks.video", "clocks.max.gr",
    "clocks.max.sm", "clocks.max.mem", "fan.speed", "pstate",
    "clocks_throttle_reasons.active",
    "ecc.errors.corrected.volatile.total", "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.corrected.aggregate.total", "ecc.errors.uncorrected.aggregate.total",
    "retired_pages.single_bit_ecc.count", "retired_pages.double_bit.count",
    "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current",
    "pcie.link.width.max", "mig.mode.current",
]
LABELS = 6  # index .. vbios_version become labels


def render():
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=" + ",".join(FIELDS), "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=True).stdout
    lines = []
    for row in out.strip().splitlines():
        cols = [c.strip() for c in row.split(",")]
        labels = ",".join(f'{k.replace(".", "_")}="{v}"' for k, v in zip(FIELDS[:LABELS], cols[:LABELS]))
        for k, v in zip(FIELDS[LABELS:], cols[LABELS:]):
            try:
                num = float(v)
            except ValueError:
                continue
            lines.append(f'nvidia_smi_{k.replace(".", "_")}{{{labels}}} {num}')
    return ("\n".join(lines) + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = render() if self.path.startswith("/metrics") else b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
