#!/usr/bin/env python3
"""A minimal OTLP/HTTP receiver for benchmarks: accepts POST /v1/traces, counts
requests and bytes, answers 200 {}. Usage: otlp-sink.py PORT (0 = any free port;
the chosen port is printed on the first line of stdout)."""
import http.server
import socketserver
import sys
import threading

counts = {"requests": 0, "bytes": 0}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        with lock:
            counts["requests"] += 1
            counts["bytes"] += n
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    srv = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    finally:
        print("received %(requests)d requests, %(bytes)d bytes" % counts, file=sys.stderr)


if __name__ == "__main__":
    main()
