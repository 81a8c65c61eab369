#!/usr/bin/env python3
"""mock_judge_server: a stand-in for an Ollama / OpenAI-compatible LLM server, for
testing xl-judge without a model. Standard library only; listens on 127.0.0.1 on a
port the OS picks (printed on stdout and, with --port-file, written to a file) and
exits by itself after --time-limit seconds.

Endpoints: POST /api/generate, GET /api/tags, GET /api/version (Ollama);
POST /v1/chat/completions, GET /v1/models (OpenAI). Every request is appended to
--log as one JSON line {method, path, model, body, headers}.

The behaviour is chosen by the model name of the request:
  good, gooddigest  valid scores derived from the continuation's word count n:
                    coherence n%10+1, relevance 10-n%10, fluency 3n%10+1,
                    overall (n+4)%10+1; the rationale holds quotes, commas and a newline
  flaky500          the first attempt for each prompt gets HTTP 500, then as good
  flaky429          the first attempt gets HTTP 429 (Retry-After: 0), then as good
  cut               the first attempt gets a reply cut mid-body (connection closed), then as good
  slow              answers as good after --slow seconds (past the client's timeout)
  badjson           "response" is not JSON
  missing           the answer lacks "fluency"
  range             "overall" is 11
  fenced            good JSON wrapped in a ```json code fence
  down              always HTTP 500
  mixed             as good, except continuations holding FAILME (always 500) or GARBAGE (not JSON)
  slowfail          as good, except continuations holding FAILME answer after --slow seconds
  nul               good scores, the answer wrapped in NUL characters and a NUL in the rationale
                    (JSON escapes \u0000 in the envelope and in the answer)
  badutf8           good scores with ill-formed UTF-8 bytes in the rationale (raw bytes on the wire)
  echoauth          HTTP 500 whose error message repeats the request's Authorization header
  anything else     HTTP 404 {"error": "model '<name>' not found"} like Ollama
/api/tags lists every model above as "<name>:latest" with a sha256 digest of its name;
/v1/models lists them too, with a "digest" only for gooddigest.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KNOWN = ["good", "gooddigest", "flaky500", "flaky429", "cut", "slow", "badjson", "missing",
         "range", "fenced", "down", "mixed", "slowfail", "nul", "badutf8", "echoauth"]
VERSION = "0.9.9-mock"

lock = threading.Lock()
attempts = {}          # (model, sha of prompt) -> attempts seen
log_file = None
slow_s = 3.0


def digest_of(name):
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def base_name(model):
    return model[:-len(":latest")] if model.endswith(":latest") else model


def continuation_of(prompt):
    m = re.findall(r"CONTINUATION:\n<<<\n(.*?)\n>>>", prompt, re.S)
    return m[-1] if m else None


def good_answer(cont):
    n = len(cont.split())
    return {"coherence": n % 10 + 1, "relevance": 10 - n % 10, "fluency": (3 * n) % 10 + 1,
            "overall": (n + 4) % 10 + 1,
            "rationale": 'Has %d words, reads "fine", mostly;\nsecond line.' % n}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, fmt, *args):  # quiet: the request log is the record
        pass

    def send_json(self, code, obj, extra_headers=()):
        data = json.dumps(obj).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra_headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def record(self, body):
        model = body.get("model") if isinstance(body, dict) else None
        entry = {"method": self.command, "path": self.path, "model": model, "body": body,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "t": time.time()}
        if log_file:
            with lock:
                with open(log_file, "a") as f:
                    f.write(json.dumps(entry) + "\n")

    def do_GET(self):
        self.record(None)
        if self.path == "/api/version":
            self.send_json(200, {"version": VERSION})
        elif self.path == "/api/tags":
            self.send_json(200, {"models": [
                {"name": m + ":latest", "model": m + ":latest", "modified_at": "2025-01-01T00:00:00Z",
                 "size": 1000 + i, "digest": digest_of(m),
                 "details": {"format": "gguf", "family": "mock"}} for i, m in enumerate(KNOWN)]})
        elif self.path == "/v1/models":
            data = []
            for m in KNOWN:
                e = {"id": m + ":latest", "object": "model", "created": 1700000000, "owned_by": "library"}
                if m == "gooddigest":
                    e["digest"] = digest_of(m)
                data.append(e)
            self.send_json(200, {"object": "list", "data": data})
        else:
            self.send_json(404, {"error": "no route " + self.path})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            self.record(raw.decode("utf-8", "replace"))
            self.send_json(400, {"error": "invalid JSON body"})
            return
        self.record(body)
        openai = self.path == "/v1/chat/completions"
        if self.path != "/api/generate" and not openai:
            self.send_json(404, {"error": "no route " + self.path})
            return
        model = str(body.get("model", ""))
        name = base_name(model)
        if openai:
            msgs = body.get("messages") or [{}]
            prompt = msgs[-1].get("content", "")
        else:
            prompt = body.get("prompt", "")
        if name not in KNOWN:
            if openai:
                self.send_json(404, {"error": {"message": 'model "%s" not found, try pulling it first' % model,
                                               "type": "api_error", "param": None, "code": None}})
            else:
                self.send_json(404, {"error": "model '%s' not found" % model})
            return
        cont = continuation_of(prompt)
        if cont is None:
            self.send_json(400, {"error": "prompt has no CONTINUATION block"})
            return
        key = (name, hashlib.sha256(prompt.encode()).hexdigest())
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            nth = attempts[key]

        text = json.dumps(good_answer(cont))
        if name in ("flaky500", "down") and (nth == 1 or name == "down"):
            self.send_json(500, {"error": "internal server error (mock)"})
            return
        if name == "flaky429" and nth == 1:
            self.send_json(429, {"error": "too many requests (mock)"}, [("Retry-After", "0")])
            return
        if name == "cut" and nth == 1:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "4000")
                self.end_headers()
                self.wfile.write(b'{"model":"cut","response":"{\\"coh')
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return
        if name == "slow" or (name == "slowfail" and "FAILME" in cont):
            time.sleep(slow_s)
        if name == "echoauth":
            self.send_json(500, {"error": "rejected credentials: " + str(self.headers.get("Authorization"))})
            return
        if name == "nul":
            a = good_answer(cont)
            a["rationale"] = "before\x00after"
            text = "\x00" + json.dumps(a) + "\x00\x00"
        if name == "badutf8" and not openai:
            a = good_answer(cont)
            a["rationale"] = "RATIONALE"
            inner = json.dumps(a).replace('"', '\\"').encode().replace(b"RATIONALE", b"bad \xff\xfe bytes \xc3(")
            data = b'{"model":"badutf8","response":"' + inner + b'","done":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return
        if name == "badjson":
            text = "Sure! Here are my scores: coherence eight {"
        elif name == "missing":
            a = good_answer(cont)
            del a["fluency"]
            text = json.dumps(a)
        elif name == "range":
            a = good_answer(cont)
            a["overall"] = 11
            text = json.dumps(a)
        elif name == "fenced":
            text = "```json\n" + text + "\n```"
        elif name == "mixed":
            if "FAILME" in cont:
                self.send_json(500, {"error": "mock failure for FAILME"})
                return
            if "GARBAGE" in cont:
                text = "not json at all"
        if openai:
            self.send_json(200, {"id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()),
                                 "model": model,
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
        else:
            self.send_json(200, {"model": model, "created_at": "2025-01-01T00:00:00Z", "response": text,
                                 "done": True, "done_reason": "stop", "total_duration": 1000})


def main():
    global log_file, slow_s
    ap = argparse.ArgumentParser(description="mock Ollama/OpenAI judge server for tests")
    ap.add_argument("--port-file", help="write the port here (atomically) once listening")
    ap.add_argument("--log", help="append each request as a JSON line to this file")
    ap.add_argument("--slow", type=float, default=3.0, help="delay of the 'slow' model in seconds")
    ap.add_argument("--time-limit", type=float, default=120.0, help="exit after this many seconds")
    args = ap.parse_args()
    log_file, slow_s = args.log, args.slow

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    # Never outlive a forgotten test: hard exit after the time limit.
    t = threading.Timer(args.time_limit, lambda: os._exit(0))
    t.daemon = True
    t.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
