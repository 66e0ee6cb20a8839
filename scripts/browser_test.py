#!/usr/bin/env python3
"""Drive headless Chromium over the DevTools protocol (standard library only: a minimal
WebSocket client below) to check scg's report.html. Run by scripts/browser-test.sh.

Checks, at 1400 px and 420 px wide:
  - no uncaught exception, console error or Log error, and no network request other than
    file:/data: URLs (the report must open offline);
  - every svg[data-chart] has data-title (equal to its figure caption), data-x-unit,
    data-y-unit, data-points > 0, drawn marks, and a rendered size > 0;
  - the page does not scroll sideways and no caption is cut.
Writes report-<width>.png and checks-<width>.json to --artifacts. Exit 1 on any failure.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHECK_JS = r"""
(() => {
  const charts = [];
  for (const svg of document.querySelectorAll('svg[data-chart]')) {
    const r = svg.getBoundingClientRect();
    const fig = svg.closest('figure');
    const cap = fig ? fig.querySelector('figcaption') : null;
    charts.push({
      kind: svg.dataset.chart || '',
      title: svg.dataset.title || '',
      x_unit: svg.dataset.xUnit || '',
      y_unit: svg.dataset.yUnit || '',
      points: Number(svg.dataset.points || 0),
      marks: svg.querySelectorAll('polyline,rect,circle,polygon,image').length,
      width: r.width,
      height: r.height,
      caption: cap ? cap.textContent : '',
      caption_cut: cap ? cap.scrollWidth > cap.clientWidth + 1 : true,
    });
  }
  return {
    charts,
    figures: document.querySelectorAll('figure.chart').length,
    page_overflow_px: document.documentElement.scrollWidth - window.innerWidth,
    inner_width: window.innerWidth,
  };
})()
"""


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client masking."""

    def __init__(self, url):
        assert url.startswith("ws://"), url
        hostport, _, path = url[len("ws://"):].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("DevTools closed the connection during the handshake")
            response += chunk
        head, _, self.buffer = response.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"WebSocket handshake failed: {head[:200]!r}")

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("DevTools closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x8:
                raise RuntimeError("DevTools closed the WebSocket")
            if opcode in (0x9, 0xA):  # ping/pong: ignore
                continue
            message += data
            if b0 & 0x80:
                return message.decode()


class DevTools:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method, timeout_s=120):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for i, e in enumerate(self.events):
                if e["method"] == method:
                    return self.events.pop(i)
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
        raise RuntimeError(f"timed out waiting for {method}")


def start_chromium(binary, profile):
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port_file = Path(profile) / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().count("\n") >= 1:
            port = int(port_file.read_text().splitlines()[0])
            return proc, port
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("chromium did not open its DevTools port within 60 s")


def page_websocket(port):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.2)
    raise RuntimeError("no page target")


def problems_of(result, width):
    out = []
    charts = result["charts"]
    if not charts:
        out.append("no charts (svg[data-chart]) in the report")
    if result["figures"] != len(charts):
        out.append(f"{result['figures']} figures but {len(charts)} charts with data attributes")
    if result["page_overflow_px"] > 1:
        out.append(f"the page scrolls sideways by {result['page_overflow_px']} px at {width} px")
    for i, c in enumerate(charts):
        name = f"chart {i} ({c['kind']}, {c['title'][:60]!r})"
        for field in ("title", "x_unit", "y_unit"):
            if not c[field].strip():
                out.append(f"{name}: empty {field}")
        if c["caption"].strip() != c["title"].strip():
            out.append(f"{name}: caption {c['caption'][:60]!r} is not the title")
        if c["caption_cut"]:
            out.append(f"{name}: caption cut at {width} px")
        if c["points"] <= 0:
            out.append(f"{name}: no data points")
        if c["marks"] <= 0:
            out.append(f"{name}: nothing drawn")
        if c["width"] <= 0 or c["height"] <= 0:
            out.append(f"{name}: rendered size {c['width']}x{c['height']}")
    return out


def event_problems(events):
    out = []
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append(f"uncaught exception: {p.get('exceptionDetails', {}).get('text')}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(f"console {p.get('type')}: {p.get('args')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log error: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                out.append(f"network request (the report must be offline): {url}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--widths", default="1400,420")
    a = ap.parse_args()
    report = Path(a.report).resolve()
    artifacts = Path(a.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="scg-chromium-")
    proc, port = start_chromium(a.chromium, profile)
    failures = []
    try:
        dt = DevTools(WebSocket(page_websocket(port)))
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.call(f"{domain}.enable")
        for width in [int(w) for w in a.widths.split(",")]:
            dt.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=2000,
                deviceScaleFactor=1,
                mobile=width < 600,
            )
            dt.call("Page.navigate", url=report.as_uri())
            dt.wait_for("Page.loadEventFired")
            result = dt.call("Runtime.evaluate", expression=CHECK_JS, returnByValue=True)
            if "exceptionDetails" in result:
                raise RuntimeError(f"check script failed: {result['exceptionDetails']}")
            value = result["result"]["value"]
            (artifacts / f"checks-{width}.json").write_text(json.dumps(value, indent=1))
            shot = dt.call("Page.captureScreenshot", format="png")
            (artifacts / f"report-{width}.png").write_bytes(base64.b64decode(shot["data"]))
            problems = problems_of(value, width) + event_problems(dt.events)
            dt.events.clear()
            print(
                f"browser-test: {width} px: {len(value['charts'])} charts, "
                f"page overflow {value['page_overflow_px']} px, {len(problems)} problems"
            )
            failures += [f"{width} px: {p}" for p in problems]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    for f in failures:
        print(f"browser-test: FAIL: {f}", file=sys.stderr)
    if failures:
        return 1
    print(f"browser-test: OK; screenshots in {artifacts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
