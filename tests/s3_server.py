"""A local S3-compatible server for pqdm's object-storage tests: moto's server, plus a request log.

    python tests/s3_server.py [--port N] [--parent PID] [--latency-ms MS]

Prints `PORT <n>` once it listens. Every request is logged as `METHOD path?query`; the log is read
with GET /__requests (JSON list) and emptied with POST /__reset, so tests can count LIST requests
(`GET /bucket?list-type=2...`). Buckets named `nocond-*` ignore `If-None-Match`, as some older
S3-compatible stores do. With --parent, the server exits when that process is gone.

To stage a race, POST /__hold?prefix=/bucket/key-prefix holds the next PUT whose path starts with
that prefix (one only) until POST /__release?prefix=...; GET /__held?prefix=... answers the held
request's path, empty while none is held. With `&nth=K` the hold catches the K-th request of any
method under the prefix instead (counted from the hold), so a test can stop a writer at every
request of its commit in turn.

To make a writer lose every race, POST /__rival?prefix=/bucket/dataset/_delta_log/ arms a rival
that always commits first: before a conditional PUT (If-None-Match) of `<prefix><N>.json` is
applied, the server puts its own version N there: version N-1's pqdm record with a new op id and
no file changed (under `_pqdm/versions/`, where an earlier pqdm committed, the whole manifest), so
the writer's PUT fails its condition. Each such rival commit is logged as `RIVAL <path>`.
POST /__rival_off?prefix=... disarms it.

To make an answer ambiguous, POST /__lose_answer?prefix=/bucket/key-prefix applies the next PUT under
that prefix and then answers 500 (as a store whose response was lost after applying a write).
"""

import argparse
import io
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

LOG = []
LOCK = threading.Lock()
# prefix -> {"armed": bool, "held": path or "", "release": threading.Event}
HOLDS = {}
# prefixes whose next PUT is applied and then answered with a 500
LOSE = set()
# prefixes of commit points (log entries, version files) where a rival always commits first
RIVALS = set()


def reply(start_response, body):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def hold_if_armed(method, path):
    """Blocks the request an armed hold matches until it is released (one request per hold):
    the next PUT under its prefix, or with `nth` the nth request of any method."""
    with LOCK:
        hold = None
        for prefix, h in HOLDS.items():
            if not h["armed"] or not path.startswith(prefix):
                continue
            if h["nth"] is None and method != "PUT":
                continue
            if h["nth"] is not None and h["nth"] > 1:
                h["nth"] -= 1
                continue
            hold = h
            break
        if hold is None:
            return
        hold["armed"] = False
        hold["held"] = f"{method} {path}" if hold["nth"] is not None else path
    hold["release"].wait(timeout=120)


def sub_request(app, environ, method, path, body=b""):
    """Runs one more request through moto with the credentials of `environ`; (status, body)."""
    sub = dict(environ)
    sub.update(
        {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            # moto reads the raw URI the server saw, not PATH_INFO.
            "REQUEST_URI": path,
            "RAW_URI": path,
            "QUERY_STRING": "",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
    )
    # Conditions and checksums were the writer's request's, not this one's.
    for key in list(sub):
        if key in ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH", "HTTP_CONTENT_MD5") or key.startswith(
            ("HTTP_X_AMZ_CHECKSUM", "HTTP_X_AMZ_SDK_CHECKSUM", "HTTP_X_AMZ_TRAILER")
        ):
            del sub[key]
    status = []
    out = b"".join(app(sub, lambda s, headers, exc_info=None: status.append(s)))
    return status[0], out


def rival_commits_first(app, environ, path):
    """Puts a rival's version N where a conditional PUT of version N is about to go."""
    with LOCK:
        armed = any(path.startswith(p) for p in RIVALS)
    name = path.rsplit("/", 1)[-1]
    if not armed or not environ.get("HTTP_IF_NONE_MATCH") or not name.endswith(".json"):
        return
    version = int(name[: -len(".json")])
    folder = path[: -len(name)]
    status, body = sub_request(app, environ, "GET", f"{folder}{version - 1:020}.json")
    if not status.startswith("200"):
        return
    operation = {
        "name": "rival", "op_id": f"rival-{version}", "rows_added": 0, "rows_removed": 0,
        "files_added": 0, "files_removed": 0,
    }
    if folder.endswith("/_delta_log/"):
        # A log entry: version N-1's pqdm record (first line) as version N's, no file changed.
        info = json.loads(body.split(b"\n", 1)[0])["commitInfo"]
        header = info["pqdm"]["manifest"]
        header["version"] = version
        header["operation"] = operation
        info["pqdm"].update({"version": version, "opId": operation["op_id"], "operation": "rival"})
        sub_request(app, environ, "PUT", path, (json.dumps({"commitInfo": info}) + "\n").encode())
    else:
        manifest = json.loads(body)
        manifest["version"] = version
        manifest["operation"] = operation
        sub_request(app, environ, "PUT", path, json.dumps(manifest).encode())
    with LOCK:
        LOG.append(f"RIVAL {path}")


def logging_app(app, latency):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/__requests":
            with LOCK:
                body = json.dumps(LOG).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if path == "/__reset":
            with LOCK:
                LOG.clear()
            return reply(start_response, b"ok")
        if path in ("/__rival", "/__rival_off"):
            prefix = parse_qs(environ.get("QUERY_STRING", "")).get("prefix", [""])[0]
            with LOCK:
                (RIVALS.add if path == "/__rival" else RIVALS.discard)(prefix)
            return reply(start_response, b"ok")
        if path == "/__lose_answer":
            prefix = parse_qs(environ.get("QUERY_STRING", "")).get("prefix", [""])[0]
            with LOCK:
                LOSE.add(prefix)
            return reply(start_response, b"ok")
        if path in ("/__hold", "/__held", "/__release"):
            query = parse_qs(environ.get("QUERY_STRING", ""))
            prefix = query.get("prefix", [""])[0]
            nth = int(query["nth"][0]) if "nth" in query else None
            with LOCK:
                if path == "/__hold":
                    HOLDS[prefix] = {
                        "armed": True, "held": "", "release": threading.Event(), "nth": nth,
                    }
                    return reply(start_response, b"ok")
                hold = HOLDS.get(prefix, {"held": "", "release": threading.Event()})
                if path == "/__release":
                    hold["release"].set()
                    return reply(start_response, b"ok")
                return reply(start_response, hold["held"].encode())
        if path.startswith("/nocond-"):
            # Buckets named nocond-* play a store that ignores conditional puts.
            environ.pop("HTTP_IF_NONE_MATCH", None)
        query = environ.get("QUERY_STRING", "")
        with LOCK:
            LOG.append(f"{environ['REQUEST_METHOD']} {path}" + (f"?{query}" if query else ""))
        if latency:
            time.sleep(latency)
        hold_if_armed(environ["REQUEST_METHOD"], path)
        if environ["REQUEST_METHOD"] == "PUT":
            rival_commits_first(app, environ, path)
        lose = None
        if environ["REQUEST_METHOD"] == "PUT":
            with LOCK:
                lose = next((p for p in LOSE if path.startswith(p)), None)
                if lose is not None:
                    LOSE.discard(lose)
        if lose is not None:
            # Apply the write, then lose its answer.
            for _ in app(environ, lambda status, headers, exc_info=None: None):
                pass
            body = b"<Error><Code>InternalError</Code><Message>answer lost</Message></Error>"
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return wrapped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0, help="delay every request (a remote store)")
    args = parser.parse_args()
    app = logging_app(DomainDispatcherApplication(create_backend_app), args.latency_ms / 1000)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    if args.parent:

        def watch():
            while True:
                try:
                    os.kill(args.parent, 0)
                except OSError:
                    os._exit(0)
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
