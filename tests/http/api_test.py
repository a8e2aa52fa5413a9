#!/usr/bin/env python3
"""Black-box tests of the JSON HTTP API (docs/http-api.md) against real `sluiced` brokers.

    python3 tests/http/api_test.py --sluiced PATH --sluice PATH --examples DIR [unittest args]

Each test class starts its own broker(s) on a fresh temp data dir and port 0 (waiting for the
`ready rpc=... admin=...` line), talks to the admin endpoint with http.client or a raw socket,
and uses the `sluice` CLI (RPC) to compare numbers, make principals and run RPC consumers.
Standard library only. Exit code: 0 when every test passed.
"""

import argparse
import atexit
import base64
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

SLUICED = None
SLUICE = None
EXAMPLES = None
LIVE_BROKERS = []  # stopped at exit, whatever happened

ERROR_STATUS = {
    "invalidArgument": 400,
    "topicNotFound": 404,
    "groupNotFound": 404,
    "notFound": 404,
    "messageTooLarge": 413,
    "payloadTooLarge": 413,
    "storageFull": 507,
    "storageFailed": 503,
    "shuttingDown": 503,
    "topicExists": 409,
    "groupBusy": 409,
    "transactionConflict": 409,
    "notPending": 409,
    "staleDelivery": 409,
    "limitExceeded": 429,
    "noRoute": 422,
    "unauthenticated": 401,
    "permissionDenied": 403,
    "forbiddenOrigin": 403,
    "hostNotAllowed": 403,
    "methodNotAllowed": 405,
    "requestTimeout": 408,
    "unsupportedMediaType": 415,
}

STATS_FIELDS = {
    "version", "uptime_ms", "topics", "messages", "bytes", "storage_used", "storage_limit",
    "connections", "consumers", "published_total", "delivered_total", "publish_rate",
    "delivery_rate", "commits",
}
SAMPLE_FIELDS = {
    "t", "publish_rate", "delivery_rate", "storage_used", "storage_limit", "connections",
    "consumers", "commits", "commit_p50_ms", "commit_p99_ms", "fsync_p99_ms",
}
TOPIC_ROW_FIELDS = {
    "name", "messages", "bytes", "publish_rate", "published_total", "groups", "lag_messages",
    "consumers", "created",
}
TOPIC_FIELDS = {
    "name", "settings", "messages", "bytes", "first_offset", "last_offset", "published_total",
    "publish_rate", "expired", "scheduled", "key_blocked", "groups", "created", "leader",
    "replicas", "in_sync",
}
SETTINGS_FIELDS = {
    "max_age_ms", "max_bytes", "max_messages", "max_message_size", "work_queue",
    "max_deliveries", "dead_letter_topic", "dedup_window_ms", "default_ttl_ms",
    "dead_letter_expired", "subjects",
}
GROUP_FIELDS = {
    "topic", "name", "position", "ack_floor", "pending", "lag_messages", "lag_ms", "delivered",
    "acked", "nacked", "redelivered", "dead_lettered", "expired", "ordering", "key_blocked",
    "scheduled", "filter", "consumers", "created",
}
CONSUMER_FIELDS = {"id", "peer", "prefetch", "in_flight", "connected"}
MESSAGE_FIELDS = {"offset", "timestamp", "timestamp_ms", "subject", "key", "headers", "id"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def clean_env(**extra):
    """The test process's environment without any SLUICE_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(extra)
    return env


def q(name):
    """Percent-encodes one path segment."""
    return urllib.parse.quote(name, safe="")


class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive get)
        self.body = body
        self.elapsed = elapsed
        self._json = None

    @property
    def json(self):
        if self._json is None:
            self._json = json.loads(self.body.decode("utf-8"))
        return self._json

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        text = self.body[:600].decode("utf-8", "replace")
        return f"<HTTP {self.status} {text!r}>"


class Broker:
    """One `sluiced` on a fresh temp data dir, ports chosen by the OS."""

    def __init__(self, auth=False, admin_token=None, max_storage="1GiB"):
        self.auth = auth
        self.admin_token = admin_token
        self.dir = tempfile.mkdtemp(prefix="sluice-http-test-")
        self.stderr_path = os.path.join(self.dir, "sluiced.stderr")
        args = [SLUICED, "--data", os.path.join(self.dir, "data"), "--listen", "127.0.0.1:0",
                "--admin", "127.0.0.1:0", "--log-level", "warn", "--max-storage", max_storage]
        env = clean_env()
        if auth:
            args.append("--auth")
            env["SLUICE_ADMIN_TOKEN"] = admin_token
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, env=env)
        LIVE_BROKERS.append(self)
        self.rpc_port, self.admin_port = self._wait_ready(20.0)
        self.host = "127.0.0.1"
        self.base = f"http://127.0.0.1:{self.admin_port}"

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        buffer = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
            for line in buffer.split(b"\n")[:-1] if b"\n" in buffer else []:
                words = dict(w.split("=", 1) for w in line.decode().split()[1:] if "=" in w)
                if line.startswith(b"ready ") and "rpc" in words and "admin" in words:
                    return int(words["rpc"]), int(words["admin"])
        stderr = self.stderr_text()
        self.stop()
        raise RuntimeError(f"sluiced did not print its ready line (exit {self.proc.returncode}); "
                           f"stdout={buffer!r} stderr={stderr[-2000:]!r}")

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self in LIVE_BROKERS:
            LIVE_BROKERS.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP ----

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                content_type="application/json", timeout=45.0):
        """One request on its own connection. `body` is JSON-encoded; `raw` is sent as is."""
        hdrs = {}
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None and content_type is not None:
            hdrs["Content-Type"] = content_type
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection(self.host, self.admin_port, timeout=timeout)
        try:
            if "Host" in hdrs:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            else:
                conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in hdrs.items():
                conn.putheader(name, value)
            if data is not None or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(data or b"")))
            started = time.monotonic()
            conn.endheaders(data)
            resp = conn.getresponse()
            payload = resp.read()
            return Response(resp.status, resp.headers, payload, time.monotonic() - started)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body={} if body is None and "raw" not in kw else body,
                            **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # ---- CLI ----

    def cli(self, *args, token=None, check=True, timeout=60):
        env = clean_env(SLUICE_TOKEN=token or "")
        cmd = [SLUICE, "--broker", f"127.0.0.1:{self.rpc_port}", *args]
        done = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd} exited {done.returncode}: {done.stderr.decode()}")
        return done

    def cli_json(self, *args, token=None):
        return json.loads(self.cli("--json", *args, token=token).stdout)


class ApiTestCase(unittest.TestCase):
    broker = None
    token = None  # default credential of this class's requests

    # Short helpers that use the class's broker and token.
    def get(self, path, **kw):
        kw.setdefault("token", self.token)
        return self.broker.get(path, **kw)

    def post(self, path, body=None, **kw):
        kw.setdefault("token", self.token)
        return self.broker.post(path, body, **kw)

    def delete(self, path, **kw):
        kw.setdefault("token", self.token)
        return self.broker.delete(path, **kw)

    def request(self, method, path, **kw):
        kw.setdefault("token", self.token)
        return self.broker.request(method, path, **kw)

    def assertOk(self, resp, status=200):
        self.assertEqual(resp.status, status, resp)
        ctype = resp.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("application/json"), f"Content-Type {ctype!r}")
        return resp.json

    def assertError(self, resp, status, code):
        self.assertEqual(ERROR_STATUS[code], status, "test table mismatch")
        self.assertEqual((resp.status, self._code(resp)), (status, code), resp)
        ctype = resp.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("application/json"), f"Content-Type {ctype!r}")
        error = resp.json["error"]
        self.assertEqual(set(error), {"code", "message"}, resp)
        self.assertIsInstance(error["message"], str)
        self.assertTrue(error["message"], "empty error message")
        return error

    @staticmethod
    def _code(resp):
        try:
            return resp.json["error"]["code"]
        except Exception:
            return None

    def assertSecurityHeaders(self, resp):
        csp = resp.header("Content-Security-Policy") or ""
        self.assertTrue(csp.startswith("default-src 'self'"), f"CSP {csp!r} on {resp}")
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(resp.header(name), value, f"{name} on {resp}")

    # Topic, publish, group and fetch shortcuts: each asserts success.
    def create_topic(self, name, settings=None):
        body = {"name": name}
        if settings is not None:
            body["settings"] = settings
        return self.assertOk(self.post("/api/v1/topics", body), 201)

    def publish(self, topic, messages):
        return self.assertOk(self.post(f"/api/v1/topics/{q(topic)}/messages",
                                       {"messages": messages}))["acks"]

    def create_group(self, topic, group, **fields):
        body = {"name": group, **fields}
        return self.assertOk(self.post(f"/api/v1/topics/{q(topic)}/groups", body), 201)

    def fetch(self, topic, group, **fields):
        return self.assertOk(self.post(f"/api/v1/topics/{q(topic)}/groups/{q(group)}/fetch",
                                       fields))

    def ack(self, topic, group, consumer, messages):
        return self.assertOk(self.post(f"/api/v1/topics/{q(topic)}/groups/{q(group)}/ack",
                                       {"consumer": consumer, "messages": messages}))

    def nack(self, topic, group, consumer, messages, **fields):
        body = {"consumer": consumer, "messages": messages, **fields}
        return self.assertOk(self.post(f"/api/v1/topics/{q(topic)}/groups/{q(group)}/nack",
                                       body))

    def get_group(self, topic, group):
        return self.assertOk(self.get(f"/api/v1/topics/{q(topic)}/groups/{q(group)}"))

    def wait_group(self, topic, group, predicate, seconds=3.0):
        """The group once `predicate` holds for it (counts follow commits), failing after
        `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            g = self.get_group(topic, group)
            if predicate(g):
                return g
            if time.monotonic() > deadline:
                self.fail(f"group {topic}/{group} never satisfied the condition: {g}")
            time.sleep(0.05)

    def assertGroupShape(self, group):
        self.assertEqual(set(group), GROUP_FIELDS, group)
        for c in group["consumers"]:
            self.assertEqual(set(c), CONSUMER_FIELDS, c)

    def assertTopicShape(self, topic):
        self.assertEqual(set(topic), TOPIC_FIELDS, topic)
        self.assertEqual(set(topic["settings"]), SETTINGS_FIELDS, topic["settings"])
        for g in topic["groups"]:
            self.assertGroupShape(g)

    def assertMessageShape(self, m, delivered=False):
        missing = MESSAGE_FIELDS - set(m)
        self.assertFalse(missing, f"message lacks {missing}: {m}")
        self.assertTrue("payload" in m or "payload_base64" in m, m)
        self.assertFalse("payload" in m and "payload_base64" in m, m)
        self.assertIsInstance(m["offset"], int)
        self.assertIsInstance(m["timestamp_ms"], int)
        self.assertRegex(m["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
        self.assertIsInstance(m["headers"], dict)
        if delivered:
            self.assertIn("deliveries", m)
            self.assertIn("delivery_id", m)


def new_token():
    return base64.b32encode(os.urandom(25)).decode().lower()  # 40 characters


# ================================================================================================
# Without authentication
# ================================================================================================


class NoAuthApiTest(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker()
        cls.addClassCleanup(cls.broker.stop)

    # ---- whoami, overview ----

    def test_whoami_without_auth(self):
        who = self.assertOk(self.get("/api/v1/whoami"))
        self.assertEqual(set(who), {"auth", "principal", "authenticated", "can", "rules"}, who)
        self.assertIs(who["auth"], False)
        self.assertIsInstance(who["authenticated"], bool)
        self.assertTrue(who["principal"] is None or isinstance(who["principal"], str))
        self.assertEqual(set(who["can"]), {"admin", "manage"})
        # Without authentication anyone may do anything.
        self.assertIs(who["can"]["admin"], True)
        self.assertIs(who["can"]["manage"], True)
        self.assertIsInstance(who["rules"], list)

    def test_cluster_of_a_standalone_broker(self):
        answer = self.assertOk(self.get("/api/v1/cluster"))
        self.assertEqual(set(answer), {"cluster"})
        cluster = answer["cluster"]
        self.assertIsNone(cluster["cluster"])
        self.assertEqual(cluster["brokers"], [])
        self.assertEqual(cluster, self.broker.cli_json("cluster", "status"))
        self.create_topic("cl.t")
        topic = self.assertOk(self.get("/api/v1/topics/cl.t"))
        self.assertIsNone(topic["leader"])
        self.assertEqual(topic["replicas"], [])

    def test_overview(self):
        self.create_topic("ov.t")
        self.publish("ov.t", [{"payload": "a"}, {"payload": "b"}])
        deadline = time.monotonic() + 4
        while True:
            ov = self.assertOk(self.get("/api/v1/overview"))
            if ov["history"]["samples"] or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertEqual(set(ov), {"stats", "history"})
        self.assertEqual(set(ov["stats"]), STATS_FIELDS)
        cli = self.broker.cli_json("stats")
        self.assertEqual(set(cli), STATS_FIELDS)
        for field in ("version", "storage_limit"):
            self.assertEqual(ov["stats"][field], cli[field], field)
        self.assertGreaterEqual(ov["stats"]["topics"], 1)
        self.assertGreaterEqual(ov["stats"]["published_total"], 2)
        self.assertEqual(set(ov["history"]), {"interval_ms", "samples"})
        self.assertEqual(ov["history"]["interval_ms"], 1000)
        samples = ov["history"]["samples"]
        self.assertTrue(samples, "no history sample after 4 s")
        self.assertLessEqual(len(samples), 15 * 60 + 1)
        for s in samples:
            self.assertEqual(set(s), SAMPLE_FIELDS, s)
        times = [s["t"] for s in samples]
        self.assertEqual(times, sorted(times), "samples not oldest first")
        now_ms = time.time() * 1000
        self.assertLess(abs(times[-1] - now_ms), 10_000, "last sample's t is not Unix ms of now")

    # ---- topics ----

    def test_create_topic_with_settings_and_get_it(self):
        settings = {"max_age_ms": 3_600_000, "max_messages": 1000, "max_bytes": 1 << 20,
                    "max_message_size": 4096, "dedup_window_ms": 60_000,
                    "default_ttl_ms": 600_000, "subjects": ["ct.>"]}
        topic = self.create_topic("ct.orders", settings)
        self.assertTopicShape(topic)
        self.assertEqual(topic["name"], "ct.orders")
        for k, v in settings.items():
            self.assertEqual(topic["settings"][k], v, k)
        self.assertIs(topic["settings"]["work_queue"], False)
        self.assertIsNone(topic["settings"]["dead_letter_topic"])
        self.assertEqual((topic["messages"], topic["bytes"], topic["groups"]), (0, 0, []))
        got = self.assertOk(self.get("/api/v1/topics/ct.orders"))
        self.assertTopicShape(got)
        self.assertEqual(got["settings"], topic["settings"])
        self.assertEqual(got["created"], topic["created"])

    def test_create_topic_defaults_match_cli(self):
        topic = self.create_topic("ct.defaults")
        cli = self.broker.cli_json("topics", "describe", "ct.defaults")
        self.assertEqual(topic["settings"], cli["settings"])
        self.assertEqual(topic["settings"]["max_message_size"], 1 << 20)

    def test_create_existing_topic_is_topic_exists(self):
        self.create_topic("ct.twice")
        self.assertError(self.post("/api/v1/topics", {"name": "ct.twice"}), 409, "topicExists")

    def test_create_topic_bad_names_and_types(self):
        for body in ({"name": "bad name"}, {"name": ""}, {"name": "x" * 201},
                     {"name": "slash/name"}, {"name": "é"}, {"name": 5}, {"name": None}, {},
                     {"name": "ct.badtype", "settings": {"max_age_ms": "1h"}},
                     {"name": "ct.badtype", "settings": {"max_messages": -1}},
                     {"name": "ct.badtype", "settings": {"work_queue": "yes"}},
                     {"name": "ct.badtype", "settings": {"subjects": "ct.>"}},
                     {"name": "ct.badtype", "settings": {"subjects": ["bad*pattern"]}},
                     {"name": "ct.badtype", "settings": []},
                     [], "name", 7):
            with self.subTest(body=body):
                self.assertError(self.post("/api/v1/topics", body), 400, "invalidArgument")
        self.assertError(self.get("/api/v1/topics/ct.badtype"), 404, "topicNotFound")

    def test_bad_json(self):
        for raw in (b"{", b"{\"name\": }", b"", b"nul", b"{\"name\": \"a\"} trailing",
                    b"\xff\xfe{}", b"{\"name\": \"ct.\xff\"}"):
            with self.subTest(raw=raw):
                self.assertError(self.post("/api/v1/topics", raw=raw), 400, "invalidArgument")

    def test_topic_not_found_on_every_topic_route(self):
        t = "/api/v1/topics/nope.missing"
        cases = [
            self.get(t), self.delete(t), self.post(t + "/purge", {}),
            self.get(t + "/messages"), self.post(t + "/messages", {"messages": [{"payload": "x"}]}),
            self.post(t + "/groups", {"name": "g"}),
        ]
        for resp in cases:
            with self.subTest(resp=resp):
                self.assertError(resp, 404, "topicNotFound")

    def test_percent_encoded_names(self):
        self.create_topic("pct.a-1")
        got = self.assertOk(self.get("/api/v1/topics/pct.a%2D1"))
        self.assertEqual(got["name"], "pct.a-1")
        self.create_group("pct.a-1", "g_1")
        got = self.assertOk(self.get("/api/v1/topics/pct%2Ea-1/groups/g%5F1"))
        self.assertEqual((got["topic"], got["name"]), ("pct.a-1", "g_1"))
        # A decoded "/" is never part of a name: it is not a route either way, but the answer is
        # about the name, not a crash or another route.
        resp = self.get("/api/v1/topics/pct%2Fa")
        self.assertIn((resp.status, self._code(resp)),
                      {(400, "invalidArgument"), (404, "topicNotFound")}, resp)

    def test_delete_topic(self):
        self.create_topic("del.t")
        self.publish("del.t", [{"payload": str(i)} for i in range(4)])
        self.create_group("del.t", "g")
        got = self.assertOk(self.delete("/api/v1/topics/del.t"))
        self.assertEqual(got, {"deleted": "del.t", "messages": 4})
        self.assertError(self.get("/api/v1/topics/del.t"), 404, "topicNotFound")
        self.assertError(self.delete("/api/v1/topics/del.t"), 404, "topicNotFound")
        # The name is free again.
        self.create_topic("del.t")

    def test_purge_topic(self):
        self.create_topic("pur.t")
        self.publish("pur.t", [{"payload": str(i)} for i in range(5)])
        got = self.assertOk(self.post("/api/v1/topics/pur.t/purge", {}))
        self.assertEqual(got, {"purged": 5})
        topic = self.assertOk(self.get("/api/v1/topics/pur.t"))
        self.assertEqual(topic["messages"], 0)
        page = self.assertOk(self.get("/api/v1/topics/pur.t/messages"))
        self.assertEqual(page["messages"], [])
        # Offsets keep growing after a purge.
        acks = self.publish("pur.t", [{"payload": "after"}])
        self.assertEqual(acks[0]["offset"], 6)

    def test_topic_numbers_equal_cli_describe(self):
        self.create_topic("num.t", {"max_message_size": 2048})
        self.publish("num.t", [{"payload": "p" * (10 * i + 1), "key": f"k{i}"} for i in range(7)])
        self.create_group("num.t", "g1")
        self.create_group("num.t", "g2", start="latest")
        fetched = self.fetch("num.t", "g1", max=3, timeout_ms=0)
        self.assertEqual(len(fetched["messages"]), 3)
        self.ack("num.t", "g1", fetched["consumer"], [{"offset": fetched["messages"][0]["offset"]}])
        api = self.assertOk(self.get("/api/v1/topics/num.t"))
        cli = self.broker.cli_json("topics", "describe", "num.t")
        self.assertTopicShape(api)
        self.assertEqual(set(api), set(cli))
        for field in ("name", "settings", "messages", "bytes", "first_offset", "last_offset",
                      "published_total", "expired", "scheduled", "key_blocked", "created"):
            self.assertEqual(api[field], cli[field], field)
        self.assertEqual([g["name"] for g in api["groups"]], [g["name"] for g in cli["groups"]])
        for a, c in zip(api["groups"], cli["groups"]):
            self.assertEqual(set(a), set(c))
            for field in a:
                if field in ("lag_ms", "consumers"):
                    continue
                self.assertEqual(a[field], c[field], f"group {a['name']} {field}")
            self.assertEqual(len(a["consumers"]), len(c["consumers"]))
        self.assertEqual((api["messages"], api["first_offset"], api["last_offset"]), (7, 1, 7))
        g1 = next(g for g in api["groups"] if g["name"] == "g1")
        self.assertEqual((g1["pending"], g1["delivered"], g1["acked"]), (2, 3, 1))
        self.assertEqual(len(g1["consumers"]), 1)

    # ---- publish and browse ----

    def test_publish_fields_and_browse(self):
        self.create_topic("pub.t")
        acks = self.publish("pub.t", [
            {"payload": "hello", "key": "k1", "headers": {"a": "1", "b": "two"}, "id": "m-1"},
            {"payload_base64": base64.b64encode(b"\xff\x00\x01").decode()},
            {"payload_base64": base64.b64encode("héllo".encode()).decode(), "key": "k2"},
            {"payload": "later", "delay_ms": 60_000},
            {"payload": "mortal", "ttl_ms": 600_000},
        ])
        self.assertEqual(acks, [{"offset": i, "duplicate": False} for i in range(1, 6)])
        now_ms = time.time() * 1000
        page = self.assertOk(self.get("/api/v1/topics/pub.t/messages"))
        self.assertEqual(set(page), {"messages", "next_offset"})
        msgs = page["messages"]
        self.assertEqual([m["offset"] for m in msgs], [1, 2, 3, 4, 5])
        self.assertEqual(page["next_offset"], 6)
        for m in msgs:
            self.assertMessageShape(m)
            self.assertLess(abs(m["timestamp_ms"] - now_ms), 10_000)
        m1, m2, m3, m4, m5 = msgs
        self.assertEqual((m1["payload"], m1["key"], m1["headers"], m1["id"]),
                         ("hello", "k1", {"a": "1", "b": "two"}, "m-1"))
        self.assertIsNone(m1.get("deliver_at_ms"))
        self.assertIsNone(m1.get("expires_at_ms"))
        self.assertNotIn("payload", m2)
        self.assertEqual(base64.b64decode(m2["payload_base64"]), b"\xff\x00\x01")
        self.assertIsNone(m2["key"])
        self.assertIsNone(m2["id"])
        self.assertEqual(m2["headers"], {})
        self.assertEqual((m3["payload"], m3["key"]), ("héllo", "k2"))
        self.assertNotIn("payload_base64", m3)
        self.assertAlmostEqual(m4["deliver_at_ms"], m4["timestamp_ms"] + 60_000, delta=2000)
        self.assertAlmostEqual(m5["expires_at_ms"], m5["timestamp_ms"] + 600_000, delta=2000)
        # The delayed message is not delivered before its time.
        self.create_group("pub.t", "g")
        got = self.fetch("pub.t", "g", max=10, timeout_ms=0)
        self.assertEqual([m["offset"] for m in got["messages"]], [1, 2, 3, 5])
        # Published to the topic directly, a message's subject is the topic's name (as in
        # `sluice peek --json` and the README's subject routing section).
        self.assertEqual([m["subject"] for m in msgs], ["pub.t"] * 5)
        self.assertEqual([m["subject"] for m in got["messages"]], ["pub.t"] * 4)

    def test_publish_with_ids_deduplicates(self):
        self.create_topic("dup.t")
        batch = [{"payload": f"p{i}", "id": f"dup-{i}"} for i in range(3)]
        first = self.publish("dup.t", batch)
        self.assertEqual(first, [{"offset": i, "duplicate": False} for i in (1, 2, 3)])
        again = self.publish("dup.t", batch + [{"payload": "new", "id": "dup-9"}])
        self.assertEqual(again, [{"offset": 1, "duplicate": True}, {"offset": 2, "duplicate": True},
                                 {"offset": 3, "duplicate": True}, {"offset": 4, "duplicate": False}])
        topic = self.assertOk(self.get("/api/v1/topics/dup.t"))
        self.assertEqual(topic["messages"], 4)

    def test_publish_bad_bodies(self):
        self.create_topic("pbad.t")
        p = "/api/v1/topics/pbad.t/messages"
        for body in ({}, {"messages": "x"}, {"messages": [1]}, {"messages": [{"payload": 5}]},
                     {"messages": [{"payload": "x", "key": 5}]},
                     {"messages": [{"payload": "x", "headers": {"a": 1}}]},
                     {"messages": [{"payload": "x", "headers": ["a"]}]},
                     {"messages": [{"payload": "x", "id": 7}]},
                     {"messages": [{"payload_base64": "***not base64***"}]},
                     {"messages": [{"payload": "x", "delay_ms": "soon"}]},
                     {"messages": [{"payload": "x", "delay_ms": 31 * 86_400_000}]},
                     {"messages": [{"payload": "x", "ttl_ms": -5}]},
                     {"messages": [{"payload": "x", "ttl_ms": 31 * 86_400_000}]}):
            with self.subTest(body=body):
                self.assertError(self.post(p, body), 400, "invalidArgument")
        self.assertEqual(self.assertOk(self.get("/api/v1/topics/pbad.t"))["messages"], 0)

    def test_message_too_large_for_topic(self):
        self.create_topic("big.t", {"max_message_size": 1024})
        p = "/api/v1/topics/big.t/messages"
        self.assertError(self.post(p, {"messages": [{"payload": "x" * 2000}]}), 413,
                         "messageTooLarge")
        self.publish("big.t", [{"payload": "x" * 1000}])

    def test_body_over_one_mib_is_payload_too_large(self):
        self.create_topic("huge.t")
        body = json.dumps({"messages": [{"payload": "x" * (1 << 20)}]}).encode()
        self.assertGreater(len(body), 1 << 20)
        status, headers, payload = raw_exchange(
            self.broker.admin_port,
            b"POST /api/v1/topics/huge.t/messages HTTP/1.1\r\n"
            b"Host: 127.0.0.1:" + str(self.broker.admin_port).encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n", body, timeout=15)
        self.assertEqual(status, 413, payload[:300])
        self.assertEqual(json_error_code(payload), "payloadTooLarge", f"{headers}\n{payload!r}")
        self.assertIn("Content-Type: application/json", headers)
        self.assertIn("X-Content-Type-Options: nosniff", headers)
        self.assertIn("Content-Security-Policy: default-src 'self'", headers)
        # Nothing was stored.
        self.assertEqual(self.assertOk(self.get("/api/v1/topics/huge.t"))["messages"], 0)

    def test_body_of_one_mib_is_accepted(self):
        self.create_topic("mib.t", {"max_message_size": 2 << 20})
        envelope = json.dumps({"messages": [{"payload": ""}]}).encode()
        payload = "y" * ((1 << 20) - len(envelope))
        body = json.dumps({"messages": [{"payload": payload}]}).encode()
        self.assertEqual(len(body), 1 << 20)
        resp = self.post("/api/v1/topics/mib.t/messages", raw=body)
        self.assertOk(resp)

    def test_post_without_json_content_type_is_415(self):
        self.create_topic("ctype.t")
        p = "/api/v1/topics/ctype.t/messages"
        body = json.dumps({"messages": [{"payload": "x"}]}).encode()
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                      None):
            with self.subTest(content_type=ctype):
                self.assertError(self.post(p, raw=body, content_type=ctype), 415,
                                 "unsupportedMediaType")
        self.assertOk(self.post(p, raw=body, content_type="application/json; charset=utf-8"))
        self.assertEqual(self.assertOk(self.get("/api/v1/topics/ctype.t"))["messages"], 1)

    def test_messages_paging_with_next_offset(self):
        self.create_topic("page.t")
        self.publish("page.t", [{"payload": f"m{i}"} for i in range(1, 26)])
        seen = []
        offset = 1
        while True:
            page = self.assertOk(self.get(f"/api/v1/topics/page.t/messages?from_offset={offset}&limit=10"))
            if not page["messages"]:
                self.assertEqual(page["next_offset"], 26)
                break
            self.assertLessEqual(len(page["messages"]), 10)
            seen.extend(m["payload"] for m in page["messages"])
            self.assertEqual(page["next_offset"], page["messages"][-1]["offset"] + 1)
            offset = page["next_offset"]
        self.assertEqual(seen, [f"m{i}" for i in range(1, 26)])
        page = self.assertOk(self.get("/api/v1/topics/page.t/messages?from_offset=24&limit=10"))
        self.assertEqual([m["offset"] for m in page["messages"]], [24, 25])
        self.assertEqual(page["next_offset"], 26)
        page = self.assertOk(self.get("/api/v1/topics/page.t/messages?from_offset=1000"))
        self.assertEqual(page["messages"], [])

    def test_messages_from_time(self):
        self.create_topic("time.t")
        self.publish("time.t", [{"payload": f"a{i}"} for i in range(3)])
        time.sleep(0.05)
        self.publish("time.t", [{"payload": f"b{i}"} for i in range(3)])
        msgs = self.assertOk(self.get("/api/v1/topics/time.t/messages"))["messages"]
        t4 = msgs[3]["timestamp_ms"]
        self.assertGreater(t4, msgs[2]["timestamp_ms"])
        page = self.assertOk(self.get(f"/api/v1/topics/time.t/messages?from_time={t4}"))
        self.assertEqual([m["payload"] for m in page["messages"]], ["b0", "b1", "b2"])
        page = self.assertOk(self.get(f"/api/v1/topics/time.t/messages?from_time={t4}&limit=2"))
        self.assertEqual([m["offset"] for m in page["messages"]], [4, 5])
        self.assertEqual(page["next_offset"], 6)
        page = self.assertOk(self.get("/api/v1/topics/time.t/messages?from_time=0"))
        self.assertEqual(len(page["messages"]), 6)

    def test_messages_bad_query(self):
        self.create_topic("mq.t")
        for query in ("limit=abc", "limit=-1", "from_offset=x", "from_offset=-3",
                      "from_time=yesterday", "limit=1.5"):
            with self.subTest(query=query):
                self.assertError(self.get(f"/api/v1/topics/mq.t/messages?{query}"), 400,
                                 "invalidArgument")

    # ---- groups ----

    def test_group_create_get_and_starts(self):
        self.create_topic("grp.t")
        self.publish("grp.t", [{"payload": str(i)} for i in range(10)])
        g = self.create_group("grp.t", "early")
        self.assertGroupShape(g)
        self.assertEqual((g["topic"], g["name"], g["position"], g["pending"], g["lag_messages"]),
                         ("grp.t", "early", 1, 0, 10))
        self.assertEqual((g["ordering"], g["filter"], g["consumers"]), ("none", [], []))
        self.assertEqual(self.create_group("grp.t", "late", start="latest")["position"], 11)
        self.assertEqual(self.create_group("grp.t", "mid", start={"offset": 4})["position"], 4)
        msgs = self.assertOk(self.get("/api/v1/topics/grp.t/messages"))["messages"]
        by_time = self.create_group("grp.t", "bytime", start={"time": msgs[0]["timestamp_ms"]})
        self.assertEqual(by_time["position"], 1)
        future = self.create_group("grp.t", "future", start={"time": int(time.time() * 1000) + 60_000})
        self.assertEqual(future["position"], 11)
        filtered = self.create_group("grp.t", "filt", filter=["grp.t"])
        self.assertEqual(filtered["filter"], ["grp.t"])
        got = self.get_group("grp.t", "mid")
        self.assertGroupShape(got)
        self.assertEqual((got["position"], got["lag_messages"]), (4, 7))
        cli = self.broker.cli_json("groups", "describe", "grp.t", "mid")
        for field in ("position", "ack_floor", "pending", "lag_messages", "delivered", "acked",
                      "ordering", "filter", "created"):
            self.assertEqual(got[field], cli[field], field)

    def test_group_bad_bodies(self):
        self.create_topic("gbad.t")
        p = "/api/v1/topics/gbad.t/groups"
        for body in ({}, {"name": ""}, {"name": "bad name"}, {"name": 3}, {"name": "x" * 201},
                     {"name": "g", "start": "middle"}, {"name": "g", "start": {"offset": "1"}},
                     {"name": "g", "start": 5}, {"name": "g", "filter": "gbad.t"},
                     {"name": "g", "filter": ["bad*"]}, {"name": "g", "ordering": "sideways"},
                     {"name": "g", "start": {"offset": 99}}):
            with self.subTest(body=body):
                self.assertError(self.post(p, body), 400, "invalidArgument")

    def test_group_not_found(self):
        self.create_topic("gnf.t")
        base = "/api/v1/topics/gnf.t/groups/nope"
        self.assertError(self.get(base), 404, "groupNotFound")
        self.assertError(self.post(base + "/reset", {"to": "earliest"}), 404, "groupNotFound")
        self.assertError(self.delete(base), 404, "groupNotFound")
        self.assertError(self.get("/api/v1/topics/gnf.missing/groups/nope"), 404, "topicNotFound")

    def test_group_reset(self):
        self.create_topic("rst.t")
        self.publish("rst.t", [{"payload": str(i)} for i in range(6)])
        self.create_group("rst.t", "g", start="latest")
        p = "/api/v1/topics/rst.t/groups/g/reset"
        g = self.assertOk(self.post(p, {"to": "earliest"}))
        self.assertGroupShape(g)
        self.assertEqual((g["position"], g["lag_messages"]), (1, 6))
        self.assertEqual(self.assertOk(self.post(p, {"to": {"offset": 3}}))["position"], 3)
        self.assertEqual(self.assertOk(self.post(p, {"to": "latest"}))["position"], 7)
        msgs = self.assertOk(self.get("/api/v1/topics/rst.t/messages"))["messages"]
        g = self.assertOk(self.post(p, {"to": {"time": msgs[0]["timestamp_ms"]}}))
        self.assertEqual(g["position"], 1)
        for body in ({}, {"to": "sometime"}, {"to": {"offset": -1}}, {"to": 3}):
            with self.subTest(body=body):
                self.assertError(self.post(p, body), 400, "invalidArgument")

    def test_group_delete(self):
        self.create_topic("gdel.t")
        self.publish("gdel.t", [{"payload": str(i)} for i in range(3)])
        self.create_group("gdel.t", "g")
        got = self.assertOk(self.delete("/api/v1/topics/gdel.t/groups/g"))
        self.assertEqual(got, {"deleted": "g", "pending": 0})
        self.assertError(self.get("/api/v1/topics/gdel.t/groups/g"), 404, "groupNotFound")

    def test_group_busy_with_http_consumer(self):
        self.create_topic("busy.h")
        self.publish("busy.h", [{"payload": "x"}])
        self.create_group("busy.h", "g")
        got = self.fetch("busy.h", "g", timeout_ms=0)
        self.assertEqual(len(got["messages"]), 1)
        # The pending count follows the delivery's commit, a moment after the answer.
        group = self.wait_group("busy.h", "g", lambda g: g["pending"] == 1)
        self.assertEqual(len(group["consumers"]), 1, group)
        self.assertEqual(group["consumers"][0]["in_flight"], 1, group)
        self.assertError(self.delete("/api/v1/topics/busy.h/groups/g"), 409, "groupBusy")
        self.assertError(self.post("/api/v1/topics/busy.h/groups/g/reset", {"to": "earliest"}),
                         409, "groupBusy")

    def test_group_busy_with_rpc_consumer(self):
        self.create_topic("busy.r")
        self.create_group("busy.r", "g")
        proc = subprocess.Popen(
            [SLUICE, "--broker", f"127.0.0.1:{self.broker.rpc_port}", "consume", "busy.r",
             "--group", "g", "--wait", "60s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env=clean_env(SLUICE_TOKEN=""))
        try:
            deadline = time.monotonic() + 10
            while not self.get_group("busy.r", "g")["consumers"]:
                self.assertIsNone(proc.poll(), "sluice consume exited early")
                self.assertLess(time.monotonic(), deadline, "RPC consumer never showed")
                time.sleep(0.1)
            consumer = self.get_group("busy.r", "g")["consumers"][0]
            self.assertIsInstance(consumer["connected"], str)  # when it connected
            self.assertIsInstance(consumer["peer"], str)
            self.assertError(self.delete("/api/v1/topics/busy.r/groups/g"), 409, "groupBusy")
            self.assertError(self.post("/api/v1/topics/busy.r/groups/g/reset",
                                       {"to": "latest"}), 409, "groupBusy")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        deadline = time.monotonic() + 10
        while self.get_group("busy.r", "g")["consumers"] and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertOk(self.delete("/api/v1/topics/busy.r/groups/g"))

    # ---- fetch, ack, nack ----

    def test_fetch_ack_then_nothing(self):
        self.create_topic("fa.t")
        self.publish("fa.t", [{"payload": f"m{i}", "key": f"k{i}", "headers": {"h": str(i)},
                               "id": f"fa-{i}"} for i in range(5)])
        self.create_group("fa.t", "g")
        got = self.fetch("fa.t", "g", max=3, timeout_ms=0)
        self.assertEqual(set(got), {"consumer", "messages"})
        consumer = got["consumer"]
        self.assertIsNotNone(consumer)
        msgs = got["messages"]
        self.assertEqual([m["offset"] for m in msgs], [1, 2, 3])
        for i, m in enumerate(msgs):
            self.assertMessageShape(m, delivered=True)
            self.assertEqual((m["payload"], m["key"], m["headers"], m["id"], m["deliveries"]),
                             (f"m{i}", f"k{i}", {"h": str(i)}, f"fa-{i}", 1))
        rest = self.fetch("fa.t", "g", consumer=consumer, max=10, timeout_ms=0)
        self.assertEqual(rest["consumer"], consumer)
        self.assertEqual([m["offset"] for m in rest["messages"]], [4, 5])
        everything = msgs + rest["messages"]
        result = self.ack("fa.t", "g", consumer,
                          [{"offset": m["offset"], "delivery_id": m["delivery_id"]}
                           for m in everything[:4]] + [{"offset": everything[4]["offset"]}])
        self.assertEqual(result, {"failures": []})
        group = self.get_group("fa.t", "g")
        self.assertEqual((group["pending"], group["acked"], group["lag_messages"]), (0, 5, 0))
        again = self.fetch("fa.t", "g", consumer=consumer, max=10, timeout_ms=0)
        self.assertEqual(again["messages"], [])
        # A second consumer of the same group gets nothing either.
        other = self.fetch("fa.t", "g", max=10, timeout_ms=0)
        self.assertNotEqual(other["consumer"], consumer)
        self.assertEqual(other["messages"], [])

    def test_fetch_defaults_and_max(self):
        self.create_topic("fmax.t")
        self.publish("fmax.t", [{"payload": str(i)} for i in range(25)])
        self.create_group("fmax.t", "g")
        got = self.fetch("fmax.t", "g", timeout_ms=0)
        self.assertEqual(len(got["messages"]), 10, "default max is 10")
        got = self.fetch("fmax.t", "g", consumer=got["consumer"], max=1000, timeout_ms=0)
        self.assertEqual(len(got["messages"]), 15)

    def test_fetch_waits_for_timeout_on_empty_group(self):
        self.create_topic("fwait.t")
        self.create_group("fwait.t", "g")
        resp = self.post("/api/v1/topics/fwait.t/groups/g/fetch", {"timeout_ms": 1500})
        got = self.assertOk(resp)
        self.assertEqual(got["messages"], [])
        self.assertGreaterEqual(resp.elapsed, 1.5)
        self.assertLess(resp.elapsed, 3.5)
        # The default wait is 1 s.
        resp = self.post("/api/v1/topics/fwait.t/groups/g/fetch",
                         {"consumer": got["consumer"]})
        self.assertEqual(self.assertOk(resp)["messages"], [])
        self.assertGreaterEqual(resp.elapsed, 1.0)
        self.assertLess(resp.elapsed, 3.0)

    def test_fetch_answers_at_once_when_fewer_than_max_are_ready(self):
        # "waits up to timeout_ms for at least one message": with 3 ready and max 10, no wait.
        self.create_topic("fsome.t")
        self.publish("fsome.t", [{"payload": str(i)} for i in range(3)])
        self.create_group("fsome.t", "g")
        resp = self.post("/api/v1/topics/fsome.t/groups/g/fetch", {"max": 10, "timeout_ms": 5000})
        self.assertEqual(len(self.assertOk(resp)["messages"]), 3)
        self.assertLess(resp.elapsed, 1.5)

    def test_fetch_returns_early_when_a_message_arrives(self):
        self.create_topic("fearly.t")
        self.create_group("fearly.t", "g")
        timer = threading.Timer(0.5, lambda: self.broker.post(
            "/api/v1/topics/fearly.t/messages", {"messages": [{"payload": "wake"}]}))
        timer.start()
        try:
            resp = self.post("/api/v1/topics/fearly.t/groups/g/fetch", {"timeout_ms": 10_000})
        finally:
            timer.join()
        got = self.assertOk(resp)
        self.assertEqual([m["payload"] for m in got["messages"]], ["wake"])
        self.assertGreaterEqual(resp.elapsed, 0.4)
        self.assertLess(resp.elapsed, 3.0)

    def test_nack_redelivers_with_deliveries_2(self):
        self.create_topic("nack.t")
        self.publish("nack.t", [{"payload": "again"}, {"payload": "later"}])
        self.create_group("nack.t", "g")
        got = self.fetch("nack.t", "g", max=2, timeout_ms=0)
        consumer = got["consumer"]
        first, second = got["messages"]
        self.assertEqual(self.nack("nack.t", "g", consumer,
                                   [{"offset": first["offset"],
                                     "delivery_id": first["delivery_id"]}]),
                         {"failures": []})
        self.assertEqual(self.nack("nack.t", "g", consumer, [{"offset": second["offset"]}],
                                   delay_ms=60_000), {"failures": []})
        again = self.fetch("nack.t", "g", consumer=consumer, max=10, timeout_ms=2000)
        self.assertEqual([(m["offset"], m["deliveries"]) for m in again["messages"]],
                         [(first["offset"], 2)])
        self.assertNotEqual(again["messages"][0]["delivery_id"], first["delivery_id"])
        group = self.get_group("nack.t", "g")
        self.assertEqual((group["nacked"], group["redelivered"]), (2, 1))
        # The delayed nack keeps the second one away.
        self.assertEqual(self.fetch("nack.t", "g", consumer=consumer, timeout_ms=0)["messages"], [])
        self.assertEqual(self.ack("nack.t", "g", consumer, [{"offset": first["offset"]}]),
                         {"failures": []})

    def test_ack_failures_not_pending_and_stale_delivery(self):
        self.create_topic("stale.t")
        self.publish("stale.t", [{"payload": "slow"}, {"payload": "never fetched"}])
        self.create_group("stale.t", "g")
        got = self.fetch("stale.t", "g", max=1, timeout_ms=0, ack_timeout_ms=300)
        consumer = got["consumer"]
        old = got["messages"][0]
        time.sleep(0.6)  # past the 300 ms ack timeout: the message is due again, first in line
        again = self.fetch("stale.t", "g", consumer=consumer, max=1, timeout_ms=5000)
        self.assertEqual(len(again["messages"]), 1, again)
        new = again["messages"][0]
        self.assertEqual((new["offset"], new["deliveries"]), (old["offset"], 2))
        self.assertNotEqual(new["delivery_id"], old["delivery_id"])
        result = self.ack("stale.t", "g", consumer,
                          [{"offset": old["offset"], "delivery_id": old["delivery_id"]},
                           {"offset": 2}])
        failures = {f["offset"]: f for f in result["failures"]}
        self.assertEqual(set(failures), {old["offset"], 2}, result)
        self.assertEqual(failures[old["offset"]]["code"], "staleDelivery")
        self.assertEqual(failures[2]["code"], "notPending")
        # The current delivery still acks.
        self.assertEqual(self.ack("stale.t", "g", consumer,
                                  [{"offset": new["offset"], "delivery_id": new["delivery_id"]}]),
                         {"failures": []})
        result = self.ack("stale.t", "g", consumer, [{"offset": new["offset"]}])
        self.assertEqual([f["code"] for f in result["failures"]], ["notPending"])
        result = self.nack("stale.t", "g", consumer, [{"offset": new["offset"]}])
        self.assertEqual([f["code"] for f in result["failures"]], ["notPending"])
        # The documented shape of a failure: offset, code, message.
        for f in failures.values():
            self.assertEqual(set(f), {"offset", "code", "message"}, f)

    def test_unknown_consumer_is_not_found(self):
        self.create_topic("unk.t")
        self.publish("unk.t", [{"payload": "x"}])
        self.create_group("unk.t", "g")
        real = self.fetch("unk.t", "g", timeout_ms=0)["consumer"]
        bogus = 987654321 if isinstance(real, int) else "no-such-consumer"
        base = "/api/v1/topics/unk.t/groups/g"
        self.assertError(self.post(base + "/fetch", {"consumer": bogus, "timeout_ms": 0}), 404,
                         "notFound")
        self.assertError(self.post(base + "/ack", {"consumer": bogus, "messages": [{"offset": 1}]}),
                         404, "notFound")
        self.assertError(self.post(base + "/nack", {"consumer": bogus, "messages": [{"offset": 1}]}),
                         404, "notFound")
        # A consumer of one group is not one of another group.
        self.create_group("unk.t", "other")
        self.assertError(self.post("/api/v1/topics/unk.t/groups/other/fetch",
                                   {"consumer": real, "timeout_ms": 0}), 404, "notFound")

    def test_fetch_bad_bodies(self):
        self.create_topic("fbad.t")
        self.create_group("fbad.t", "g")
        p = "/api/v1/topics/fbad.t/groups/g/fetch"
        for body in ({"max": 0}, {"max": 1001}, {"max": -1}, {"max": "10"},
                     {"timeout_ms": 30_001}, {"timeout_ms": -1}, {"timeout_ms": "1s"},
                     {"ack_timeout_ms": -1}, {"ack_timeout_ms": "30s"}, [], "x"):
            with self.subTest(body=body):
                self.assertError(self.post(p, body), 400, "invalidArgument")
        self.assertOk(self.post(p, {"max": 1000, "timeout_ms": 0}))
        a = "/api/v1/topics/fbad.t/groups/g/ack"
        for body in ({}, {"consumer": None, "messages": []}, {"messages": [{"offset": 1}]},
                     {"consumer": "x", "messages": "1"}, {"consumer": "x", "messages": [{"offset": "1"}]}):
            with self.subTest(ack=body):
                self.assertError(self.post(a, body), 400, "invalidArgument")
        self.assertError(self.post("/api/v1/topics/fbad.t/groups/g/nack",
                                   {"consumer": "x", "messages": [], "delay_ms": "1s"}),
                         400, "invalidArgument")

    def test_fetch_on_missing_topic(self):
        self.assertError(self.post("/api/v1/topics/fmiss.t/groups/g/fetch", {"timeout_ms": 0}),
                         404, "topicNotFound")

    # ---- routing, methods ----

    def test_unknown_routes_are_not_found(self):
        for method, path in (("GET", "/api/v1/nope"), ("GET", "/api/v1"), ("GET", "/api/v1/"),
                             ("GET", "/api/v2/whoami"), ("POST", "/api/v1/whoami/extra"),
                             ("GET", "/api/v1/topics/a/b/c/d/e/f"),
                             ("GET", "/api/v1/topics/a/groups/g/bogus")):
            with self.subTest(method=method, path=path):
                resp = self.request(method, path, body={} if method == "POST" else None)
                self.assertError(resp, 404, "notFound")
                self.assertSecurityHeaders(resp)

    def test_wrong_methods_are_405(self):
        self.create_topic("m405.t")
        self.create_group("m405.t", "g")
        for method, path in (("DELETE", "/api/v1/whoami"), ("POST", "/api/v1/overview"),
                             ("PUT", "/api/v1/topics"), ("DELETE", "/api/v1/topics"),
                             ("PATCH", "/api/v1/topics/m405.t"), ("PUT", "/api/v1/topics/m405.t"),
                             ("GET", "/api/v1/topics/m405.t/purge"),
                             ("DELETE", "/api/v1/topics/m405.t/messages"),
                             ("GET", "/api/v1/topics/m405.t/groups"),
                             ("PUT", "/api/v1/topics/m405.t/groups/g"),
                             ("GET", "/api/v1/topics/m405.t/groups/g/reset"),
                             ("GET", "/api/v1/topics/m405.t/groups/g/fetch"),
                             ("GET", "/api/v1/topics/m405.t/groups/g/ack"),
                             ("DELETE", "/api/v1/topics/m405.t/groups/g/nack")):
            with self.subTest(method=method, path=path):
                body = {} if method in ("POST", "PUT", "PATCH") else None
                resp = self.request(method, path, body=body)
                self.assertError(resp, 405, "methodNotAllowed")
                self.assertSecurityHeaders(resp)
        # Nothing happened to the topic.
        self.assertOk(self.get("/api/v1/topics/m405.t"))

    # ---- browser protections ----

    def test_security_headers(self):
        self.assertSecurityHeaders(self.get("/api/v1/whoami"))
        self.assertSecurityHeaders(self.get("/api/v1/topics"))
        self.assertSecurityHeaders(self.get("/api/v1/topics/sec.missing"))
        self.assertSecurityHeaders(self.post("/api/v1/topics", raw=b"{"))
        self.assertSecurityHeaders(self.get("/ui/"))
        self.assertSecurityHeaders(self.get("/ui/app.js"))

    def test_host_header_must_be_allowed(self):
        port = self.broker.admin_port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost",
                     "127.0.0.1"):
            with self.subTest(host=host):
                self.assertOk(self.get("/api/v1/whoami", headers={"Host": host}))
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}",
                     f"localhost.evil.example:{port}"):
            with self.subTest(host=host):
                resp = self.get("/api/v1/whoami", headers={"Host": host})
                self.assertError(resp, 403, "hostNotAllowed")
                self.assertSecurityHeaders(resp)
        resp = self.post("/api/v1/topics", {"name": "host.t"}, headers={"Host": "evil.example"})
        self.assertError(resp, 403, "hostNotAllowed")
        self.assertError(self.get("/api/v1/topics/host.t"), 404, "topicNotFound")

    def test_cross_origin_requests_are_refused(self):
        port = self.broker.admin_port
        resp = self.post("/api/v1/topics", {"name": "orig.t"},
                         headers={"Origin": "http://evil.example"})
        self.assertError(resp, 403, "forbiddenOrigin")
        self.assertSecurityHeaders(resp)
        self.assertIsNone(resp.header("Access-Control-Allow-Origin"))
        self.assertError(self.get("/api/v1/topics/orig.t"), 404, "topicNotFound")
        self.assertError(self.post("/api/v1/topics", {"name": "orig.t"},
                                   headers={"Sec-Fetch-Site": "cross-site"}), 403,
                         "forbiddenOrigin")
        self.assertError(self.post("/api/v1/topics", {"name": "orig.t"},
                                   headers={"Origin": f"http://127.0.0.1:{port + 1}"}), 403,
                         "forbiddenOrigin")
        self.assertError(self.get("/api/v1/topics", headers={"Origin": "http://evil.example"}),
                         403, "forbiddenOrigin")
        # A CORS preflight is never granted.
        resp = self.request("OPTIONS", "/api/v1/topics",
                            headers={"Origin": "http://evil.example",
                                     "Access-Control-Request-Method": "POST"})
        self.assertGreaterEqual(resp.status, 400)
        self.assertIsNone(resp.header("Access-Control-Allow-Origin"))
        # The console's own origin is fine.
        self.create_topic_with_origin("orig.t", f"http://127.0.0.1:{port}")
        self.assertOk(self.post("/api/v1/topics/orig.t/purge", {},
                                headers={"Sec-Fetch-Site": "same-origin",
                                         "Origin": f"http://127.0.0.1:{port}"}))

    def create_topic_with_origin(self, name, origin):
        resp = self.post("/api/v1/topics", {"name": name}, headers={"Origin": origin})
        self.assertOk(resp, 201)

    # ---- console, old endpoints ----

    def test_console_is_served(self):
        for path in ("/ui/", "/ui"):
            with self.subTest(path=path):
                resp = self.get(path)
                if resp.status in (301, 302, 307, 308):
                    self.assertEqual(resp.header("Location"), "/ui/")
                    continue
                self.assertEqual(resp.status, 200, resp)
                self.assertTrue(resp.header("Content-Type").startswith("text/html"))
                self.assertIn(b"<html", resp.body.lower())
                self.assertIn(b"app.js", resp.body)
        resp = self.get("/ui/app.js")
        self.assertEqual(resp.status, 200, resp)
        self.assertRegex(resp.header("Content-Type"), r"^(text|application)/javascript")
        self.assertIn(b"/api/v1", resp.body)
        resp = self.get("/ui/style.css")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.header("Content-Type").startswith("text/css"))
        resp = self.get("/ui/favicon.svg")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.header("Content-Type").startswith("image/svg+xml"))
        self.assertEqual(self.get("/ui/nope.js").status, 404)

    def test_metrics_and_health_unchanged(self):
        resp = self.get("/healthz")
        self.assertEqual(resp.status, 200)
        resp = self.get("/readyz")
        self.assertEqual(resp.status, 200)
        resp = self.get("/metrics")
        self.assertEqual(resp.status, 200)
        self.assertIn(b"sluice_", resp.body)

    # ---- slow requests (one ~11 s test) ----

    def test_incomplete_requests_time_out_but_fetch_waits_do_not(self):
        self.create_topic("slow.t")
        self.create_group("slow.t", "g")
        port = self.broker.admin_port
        results = {}

        def long_fetch():
            results["fetch"] = self.post("/api/v1/topics/slow.t/groups/g/fetch",
                                         {"timeout_ms": 11_000})

        def half_request(name, data):
            started = time.monotonic()
            sock = socket.create_connection(("127.0.0.1", port), timeout=20)
            try:
                sock.sendall(data)
                received = b""
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except (ConnectionResetError, socket.timeout):
                        break
                    if not chunk:
                        break
                    received += chunk
            finally:
                sock.close()
            results[name] = (time.monotonic() - started, received)

        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        threads = [
            threading.Thread(target=long_fetch),
            threading.Thread(target=half_request, args=(
                "headers", b"GET /api/v1/whoami HTTP/1.1\r\n" + host + b"Accept: */*\r\n")),
            threading.Thread(target=half_request, args=(
                "body", b"POST /api/v1/topics HTTP/1.1\r\n" + host
                + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for name in ("headers", "body"):
            with self.subTest(which=name):
                elapsed, received = results[name]
                self.assertGreaterEqual(elapsed, 9.5, f"closed after {elapsed:.1f} s: {received!r}")
                self.assertLess(elapsed, 12.5, f"took {elapsed:.1f} s")
                if received:  # a 408 (or, allowed, a bare close)
                    self.assertTrue(received.startswith(b"HTTP/1.1 408"), received[:200])
                    head, body = received.split(b"\r\n\r\n", 1)
                    self.assertEqual(json_error_code(body), "requestTimeout",
                                     f"after {elapsed:.1f} s: {received!r}")
                    self.assertIn(b"X-Content-Type-Options: nosniff", head)
        resp = results["fetch"]
        self.assertEqual(self.assertOk(resp)["messages"], [])
        self.assertGreaterEqual(resp.elapsed, 11.0)
        self.assertLess(resp.elapsed, 13.5)
        # And the broker lives on.
        self.assertIsNone(self.broker.proc.poll(),
                          f"sluiced exited: {self.broker.stderr_text()[-2000:]}")
        self.assertEqual(self.get("/healthz").status, 200)


def json_error_code(body):
    """The error code of a JSON error body, or None when the body is not one."""
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def raw_exchange(port, head, body, timeout=15):
    """Sends `head` then `body` on a raw socket, stopping early if the server answers; returns
    (status, headers text, body bytes) of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(head)
        sent = 0
        while sent < len(body):
            readable, writable, _ = select.select([sock], [sock], [], timeout)
            if readable:
                break
            if writable:
                try:
                    sent += sock.send(body[sent:sent + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    break
        received = b""
        sock.settimeout(timeout)
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received:
                head_text, rest = received.split(b"\r\n\r\n", 1)
                length = [int(line.split(b":", 1)[1]) for line in head_text.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(rest) >= length[0]:
                    break
    finally:
        sock.close()
    if not received:
        raise AssertionError("no answer at all (connection closed or reset)")
    head_text, payload = received.split(b"\r\n\r\n", 1)
    status = int(head_text.split(b" ", 2)[1])
    return status, head_text.decode("latin-1"), payload


# ================================================================================================
# Topic listing: its own broker, so the totals are exact
# ================================================================================================


class TopicListTest(ApiTestCase):
    NAMES = [f"Tp-{i:02d}" for i in range(30)]

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker()
        cls.addClassCleanup(cls.broker.stop)
        b = cls.broker
        for i, name in enumerate(cls.NAMES):
            resp = b.post("/api/v1/topics", {"name": name})
            assert resp.status == 201, resp
            # Message counts 0..29 in a shuffled order, so no sort equals creation order.
            count = (i * 7) % 30
            if count:
                resp = b.post(f"/api/v1/topics/{name}/messages",
                              {"messages": [{"payload": "x" * (i + 1)}] * count})
                assert resp.status == 200, resp
            if i % 3 == 0:
                for g in range(i // 3 % 4 + 1):
                    resp = b.post(f"/api/v1/topics/{name}/groups", {"name": f"g{g}"})
                    assert resp.status == 201, resp

    def listing(self, query=""):
        got = self.assertOk(self.get("/api/v1/topics" + ("?" + query if query else "")))
        self.assertEqual(set(got), {"total", "matched", "offset", "limit", "topics"})
        for row in got["topics"]:
            self.assertEqual(set(row), TOPIC_ROW_FIELDS, row)
        return got

    def test_default_listing(self):
        got = self.listing()
        self.assertEqual((got["total"], got["matched"], got["offset"], got["limit"]),
                         (30, 30, 0, 50))
        self.assertEqual([r["name"] for r in got["topics"]], sorted(self.NAMES))
        row = next(r for r in got["topics"] if r["name"] == "Tp-03")
        self.assertEqual((row["messages"], row["published_total"], row["groups"],
                          row["lag_messages"], row["consumers"]), (21, 21, 2, 21, 0))
        self.assertEqual(row["bytes"],
                         self.broker.cli_json("topics", "describe", "Tp-03")["bytes"])
        self.assertEqual(row["created"],
                         self.broker.cli_json("topics", "describe", "Tp-03")["created"])

    def test_filter_is_case_insensitive_substring(self):
        got = self.listing("filter=tP-1")
        self.assertEqual((got["total"], got["matched"]), (30, 10))
        self.assertEqual([r["name"] for r in got["topics"]], [f"Tp-1{i}" for i in range(10)])
        got = self.listing("filter=" + q("-2"))
        self.assertEqual(got["matched"], 10)
        got = self.listing("filter=nothing-like-this")
        self.assertEqual((got["total"], got["matched"], got["topics"]), (30, 0, []))

    def test_sort_and_order(self):
        cases = {"messages": "messages", "bytes": "bytes", "groups": "groups",
                 "lag_messages": "lag_messages", "publish_rate": "publish_rate"}
        for sort, field in cases.items():
            for order in ("asc", "desc"):
                with self.subTest(sort=sort, order=order):
                    rows = self.listing(f"sort={sort}&order={order}&limit=500")["topics"]
                    self.assertEqual(len(rows), 30)
                    values = [r[field] for r in rows]
                    self.assertEqual(values, sorted(values, reverse=order == "desc"))
        rows = self.listing("sort=messages&order=desc&limit=1")["topics"]
        self.assertEqual((rows[0]["messages"], len(rows)), (29, 1))
        rows = self.listing("sort=name&order=desc")["topics"]
        self.assertEqual([r["name"] for r in rows], sorted(self.NAMES, reverse=True))
        # Creation times have millisecond resolution: check the order of the times, and that
        # the first and last created are at the ends.
        rows = self.listing("sort=created&order=asc")["topics"]
        created = [r["created"] for r in rows]
        self.assertEqual(created, sorted(created))
        self.assertEqual((rows[0]["name"], rows[-1]["name"]), (self.NAMES[0], self.NAMES[-1]))
        rows = self.listing("sort=created&order=desc")["topics"]
        created = [r["created"] for r in rows]
        self.assertEqual(created, sorted(created, reverse=True))
        self.assertEqual((rows[0]["name"], rows[-1]["name"]), (self.NAMES[-1], self.NAMES[0]))
        rows = self.listing("sort=name")["topics"]
        self.assertEqual([r["name"] for r in rows], sorted(self.NAMES), "name defaults to asc")

    def test_offset_and_limit(self):
        got = self.listing("offset=5&limit=5")
        self.assertEqual((got["offset"], got["limit"], got["matched"]), (5, 5, 30))
        self.assertEqual([r["name"] for r in got["topics"]], sorted(self.NAMES)[5:10])
        got = self.listing("offset=25&limit=10")
        self.assertEqual([r["name"] for r in got["topics"]], sorted(self.NAMES)[25:])
        got = self.listing("offset=30")
        self.assertEqual(got["topics"], [])
        got = self.listing("offset=100&limit=500")
        self.assertEqual((got["offset"], got["limit"], got["topics"]), (100, 500, []))
        got = self.listing("filter=tp-2&sort=messages&order=desc&offset=2&limit=3")
        expected = sorted((r for r in self.listing("filter=tp-2&limit=500")["topics"]),
                          key=lambda r: -r["messages"])[2:5]
        self.assertEqual([r["messages"] for r in got["topics"]], [r["messages"] for r in expected])
        self.assertEqual(got["matched"], 10)

    def test_bad_listing_queries(self):
        for query in ("limit=0", "limit=501", "limit=-1", "limit=ten", "offset=-1", "offset=x",
                      "sort=size", "order=up", "sort=", "limit="):
            with self.subTest(query=query):
                self.assertError(self.get("/api/v1/topics?" + query), 400, "invalidArgument")


# ================================================================================================
# Limits and shutdown: the 507, 429 and 503 answers
# ================================================================================================


class LimitsTest(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(max_storage="16MiB")
        cls.addClassCleanup(cls.broker.stop)

    def test_storage_full_is_507_and_consumers_keep_working(self):
        self.create_topic("full.t")
        self.publish("full.t", [{"payload": "first"}])
        self.create_group("full.t", "g")
        batch = {"messages": [{"payload": "x" * 100_000}] * 10}
        for _ in range(40):
            resp = self.post("/api/v1/topics/full.t/messages", batch)
            if resp.status != 200:
                break
        self.assertError(resp, 507, "storageFull")
        got = self.fetch("full.t", "g", max=1, timeout_ms=0)
        self.assertEqual(got["messages"][0]["payload"], "first")
        self.assertEqual(self.ack("full.t", "g", got["consumer"], [{"offset": 1}]),
                         {"failures": []})
        self.assertOk(self.post("/api/v1/topics/full.t/purge", {}))
        self.publish("full.t", [{"payload": "room again"}])

    def test_too_many_http_consumers_is_429(self):
        self.create_topic("many.t")
        self.create_group("many.t", "g")
        first = None
        for _ in range(2000):
            resp = self.post("/api/v1/topics/many.t/groups/g/fetch", {"max": 1, "timeout_ms": 0})
            if resp.status != 200:
                break
            first = first if first is not None else resp.json["consumer"]
        self.assertError(resp, 429, "limitExceeded")
        # An existing consumer still fetches.
        again = self.fetch("many.t", "g", consumer=first, timeout_ms=0)
        self.assertEqual(again["consumer"], first)

    def test_shutdown_answers_a_waiting_fetch_with_503(self):
        broker = Broker()
        try:
            broker.post("/api/v1/topics", {"name": "stop.t"})
            broker.post("/api/v1/topics/stop.t/groups", {"name": "g"})
            results = {}
            waiter = threading.Thread(target=lambda: results.setdefault("fetch", broker.post(
                "/api/v1/topics/stop.t/groups/g/fetch", {"timeout_ms": 20_000})))
            waiter.start()
            # The fetch is waiting in the broker once its HTTP consumer shows in the group.
            deadline = time.monotonic() + 10
            while not broker.get("/api/v1/topics/stop.t/groups/g").json["consumers"]:
                self.assertLess(time.monotonic(), deadline, "the fetch never reached the broker")
                time.sleep(0.05)
            broker.proc.send_signal(signal.SIGTERM)
            waiter.join(15)
            self.assertEqual(broker.proc.wait(15), 0)
            resp = results["fetch"]
            self.assertError(resp, 503, "shuttingDown")
            self.assertLess(resp.elapsed, 5.0)
        finally:
            broker.stop()


# ================================================================================================
# With authentication
# ================================================================================================


class AuthApiTest(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin = new_token()
        assert len(cls.admin) == 40
        cls.broker = Broker(auth=True, admin_token=cls.admin)
        cls.addClassCleanup(cls.broker.stop)
        cls.token = cls.admin
        b = cls.broker
        b.cli("auth", "principals", "create", "reader", "--allow", "consume:hr.>", token=cls.admin)
        b.cli("auth", "principals", "create", "writer", "--allow", "publish:hr.>", token=cls.admin)
        b.cli("auth", "principals", "create", "manager", "--allow", "manage:hm.>",
              token=cls.admin)
        cls.reader = b.cli("auth", "tokens", "create", "reader", token=cls.admin).stdout.decode().strip()
        cls.reader2 = b.cli("auth", "tokens", "create", "reader", token=cls.admin).stdout.decode().strip()
        cls.writer = b.cli("auth", "tokens", "create", "writer", token=cls.admin).stdout.decode().strip()
        cls.manager = b.cli("auth", "tokens", "create", "manager", token=cls.admin).stdout.decode().strip()
        for name in ("hr.a", "hr.b", "hx.c"):
            resp = b.post("/api/v1/topics", {"name": name}, token=cls.admin)
            assert resp.status == 201, resp
            resp = b.post(f"/api/v1/topics/{name}/messages",
                          {"messages": [{"payload": f"{name}-{i}"} for i in range(3)]},
                          token=cls.admin)
            assert resp.status == 200, resp
            resp = b.post(f"/api/v1/topics/{name}/groups", {"name": "g"}, token=cls.admin)
            assert resp.status == 201, resp

    def test_whoami_anonymous_and_bad_token(self):
        for token in (None, "sluice_" + "0" * 48):
            with self.subTest(token=token and "bad"):
                who = self.assertOk(self.get("/api/v1/whoami", token=token))
                self.assertEqual(set(who), {"auth", "principal", "authenticated", "can", "rules"})
                self.assertIs(who["auth"], True)
                self.assertIs(who["authenticated"], False)
                self.assertIsNone(who["principal"])
                self.assertEqual(who["can"], {"admin": False, "manage": False})
                self.assertEqual(who["rules"], [])

    def test_whoami_with_tokens(self):
        who = self.assertOk(self.get("/api/v1/whoami", token=self.admin))
        self.assertEqual((who["auth"], who["authenticated"], who["principal"]),
                         (True, True, "admin"))
        self.assertEqual(who["can"], {"admin": True, "manage": True})
        self.assertTrue(who["rules"])
        for rule in who["rules"]:
            self.assertEqual(set(rule), {"allow", "actions", "pattern"})
        who = self.assertOk(self.get("/api/v1/whoami", token=self.reader))
        self.assertEqual((who["authenticated"], who["principal"]), (True, "reader"))
        self.assertEqual(who["can"], {"admin": False, "manage": False})
        self.assertEqual(who["rules"], [{"allow": True, "actions": ["consume"], "pattern": "hr.>"}])
        who = self.assertOk(self.get("/api/v1/whoami", token=self.manager))
        self.assertEqual(who["can"], {"admin": False, "manage": True})
        cli = self.broker.cli_json("auth", "whoami", token=self.reader)
        reader = self.assertOk(self.get("/api/v1/whoami", token=self.reader))
        self.assertEqual(reader["rules"], cli["rules"])

    def test_every_route_needs_a_credential(self):
        routes = [
            ("GET", "/api/v1/overview", None), ("GET", "/api/v1/topics", None),
            ("POST", "/api/v1/topics", {"name": "hr.new"}), ("GET", "/api/v1/topics/hr.a", None),
            ("DELETE", "/api/v1/topics/hr.a", None), ("POST", "/api/v1/topics/hr.a/purge", {}),
            ("GET", "/api/v1/topics/hr.a/messages", None),
            ("POST", "/api/v1/topics/hr.a/messages", {"messages": [{"payload": "x"}]}),
            ("POST", "/api/v1/topics/hr.a/groups", {"name": "g2"}),
            ("GET", "/api/v1/topics/hr.a/groups/g", None),
            ("POST", "/api/v1/topics/hr.a/groups/g/reset", {"to": "earliest"}),
            ("DELETE", "/api/v1/topics/hr.a/groups/g", None),
            ("POST", "/api/v1/topics/hr.a/groups/g/fetch", {"timeout_ms": 0}),
            ("POST", "/api/v1/topics/hr.a/groups/g/ack",
             {"consumer": 1, "messages": [{"offset": 1}]}),
            ("POST", "/api/v1/topics/hr.a/groups/g/nack",
             {"consumer": 1, "messages": [{"offset": 1}]}),
        ]
        for method, path, body in routes:
            with self.subTest(method=method, path=path):
                resp = self.request(method, path, body=body, token=None)
                self.assertError(resp, 401, "unauthenticated")
        # A wrong secret is refused the same way, and never echoed.
        bad = "sluice_" + "1" * 48
        resp = self.get("/api/v1/topics", token=bad)
        error = self.assertError(resp, 401, "unauthenticated")
        self.assertNotIn(bad, error["message"])
        resp = self.get("/api/v1/topics", headers={"Authorization": "Basic " + self.admin})
        self.assertError(resp, 401, "unauthenticated")
        # Nothing changed.
        topic = self.assertOk(self.get("/api/v1/topics/hr.a", token=self.admin))
        self.assertEqual(topic["messages"], 3)
        self.assertEqual([g["name"] for g in topic["groups"]], ["g"])

    def test_credential_is_checked_before_the_body(self):
        # Without a credential the answer is unauthenticated, whatever the body holds.
        for method, path, raw in (("POST", "/api/v1/topics", b'{"name": 5}'),
                                  ("POST", "/api/v1/topics", b"{"),
                                  ("POST", "/api/v1/topics/hr.a/groups/g/ack", b"{}"),
                                  ("GET", "/api/v1/topics?limit=0", None)):
            with self.subTest(method=method, path=path, body=raw):
                resp = self.request(method, path, raw=raw, token=None)
                self.assertError(resp, 401, "unauthenticated")

    def test_rules_apply(self):
        r, w, m = self.reader, self.writer, self.manager
        denied = [
            (r, "POST", "/api/v1/topics", {"name": "hr.new"}),
            (r, "POST", "/api/v1/topics/hr.a/messages", {"messages": [{"payload": "x"}]}),
            (r, "DELETE", "/api/v1/topics/hr.a", None),
            (r, "POST", "/api/v1/topics/hr.a/purge", {}),
            (r, "POST", "/api/v1/topics/hr.a/groups", {"name": "g2"}),
            (r, "POST", "/api/v1/topics/hr.a/groups/g/reset", {"to": "earliest"}),
            (r, "DELETE", "/api/v1/topics/hr.a/groups/g", None),
            (r, "GET", "/api/v1/topics/hx.c", None),
            (r, "GET", "/api/v1/topics/hx.c/messages", None),
            (r, "POST", "/api/v1/topics/hx.c/groups/g/fetch", {"timeout_ms": 0}),
            (w, "GET", "/api/v1/topics/hr.a/messages", None),
            (w, "POST", "/api/v1/topics/hr.a/groups/g/fetch", {"timeout_ms": 0}),
            (w, "POST", "/api/v1/topics/hx.c/messages", {"messages": [{"payload": "x"}]}),
            (m, "POST", "/api/v1/topics", {"name": "hr.z"}),
            (m, "GET", "/api/v1/topics/hr.a", None),
        ]
        for token, method, path, body in denied:
            with self.subTest(who=token[:10], method=method, path=path):
                error = self.assertError(self.request(method, path, body=body, token=token), 403,
                                         "permissionDenied")
                self.assertNotIn(token, error["message"])
        # Describe needs any of publish, consume, manage.
        self.assertOk(self.get("/api/v1/topics/hr.a", token=r))
        self.assertOk(self.get("/api/v1/topics/hr.a", token=w))
        self.assertOk(self.get("/api/v1/topics/hr.a/groups/g", token=r))
        self.assertOk(self.get("/api/v1/topics/hr.a/messages", token=r))
        self.assertOk(self.get("/api/v1/overview", token=r))
        acks = self.assertOk(self.post("/api/v1/topics/hr.b/messages",
                                       {"messages": [{"payload": "by writer"}]}, token=w))["acks"]
        self.assertEqual(acks[0]["duplicate"], False)
        created = self.assertOk(self.post("/api/v1/topics", {"name": "hm.x"}, token=m), 201)
        self.assertEqual(created["name"], "hm.x")
        self.assertOk(self.post("/api/v1/topics/hm.x/groups", {"name": "g"}, token=m), 201)
        self.assertOk(self.post("/api/v1/topics/hm.x/purge", {}, token=m))
        self.assertOk(self.delete("/api/v1/topics/hm.x", token=m))

    def test_listing_shows_only_describable_topics(self):
        got = self.assertOk(self.get("/api/v1/topics?limit=500", token=self.reader))
        names = [t["name"] for t in got["topics"]]
        self.assertEqual(names, ["hr.a", "hr.b"])
        self.assertEqual((got["total"], got["matched"]), (2, 2))
        got = self.assertOk(self.get("/api/v1/topics?filter=hx", token=self.reader))
        self.assertEqual((got["total"], got["matched"], got["topics"]), (2, 0, []))
        got = self.assertOk(self.get("/api/v1/topics?filter=h", token=self.admin))
        self.assertGreaterEqual(got["matched"], 3)
        self.assertIn("hx.c", [t["name"] for t in got["topics"]])

    def test_consume_with_a_consume_only_credential(self):
        base = "/api/v1/topics/hr.a/groups/g"
        got = self.assertOk(self.post(base + "/fetch", {"max": 1, "timeout_ms": 0},
                                      token=self.reader))
        self.assertEqual(len(got["messages"]), 1)
        m = got["messages"][0]
        self.assertEqual(self.assertOk(self.post(base + "/nack", {
            "consumer": got["consumer"], "messages": [{"offset": m["offset"]}]},
            token=self.reader)), {"failures": []})
        again = self.assertOk(self.post(base + "/fetch", {
            "consumer": got["consumer"], "max": 1, "timeout_ms": 2000}, token=self.reader))
        self.assertEqual(again["messages"][0]["offset"], m["offset"])
        self.assertEqual(self.assertOk(self.post(base + "/ack", {
            "consumer": got["consumer"], "messages": [{"offset": m["offset"]}]},
            token=self.reader)), {"failures": []})

    def test_http_consumer_of_another_credential_is_refused(self):
        base = "/api/v1/topics/hr.b/groups/g"
        got = self.assertOk(self.post(base + "/fetch", {"max": 1, "timeout_ms": 0},
                                      token=self.reader))
        consumer = got["consumer"]
        offset = got["messages"][0]["offset"]
        for token in (self.reader2, self.admin):
            with self.subTest(token="reader2" if token == self.reader2 else "admin"):
                self.assertError(self.post(base + "/fetch",
                                           {"consumer": consumer, "timeout_ms": 0}, token=token),
                                 404, "notFound")
                self.assertError(self.post(base + "/ack",
                                           {"consumer": consumer, "messages": [{"offset": offset}]},
                                           token=token), 404, "notFound")
                self.assertError(self.post(base + "/nack",
                                           {"consumer": consumer, "messages": [{"offset": offset}]},
                                           token=token), 404, "notFound")
        # Still held by its owner, who may ack it.
        group = self.wait_group("hr.b", "g", lambda g: g["pending"] == 1)
        self.assertEqual(group["consumers"][0]["in_flight"], 1, group)
        self.assertEqual(self.assertOk(self.post(base + "/ack", {
            "consumer": consumer, "messages": [{"offset": offset}]}, token=self.reader)),
            {"failures": []})

    def test_host_and_origin_checks_come_first(self):
        resp = self.get("/api/v1/whoami", headers={"Host": "evil.example"})
        self.assertError(resp, 403, "hostNotAllowed")
        resp = self.post("/api/v1/topics", {"name": "hr.origin"}, token=self.admin,
                         headers={"Origin": "http://evil.example"})
        self.assertError(resp, 403, "forbiddenOrigin")
        self.assertError(self.get("/api/v1/topics/hr.origin"), 404, "topicNotFound")

    def test_examples_with_a_token(self):
        env = clean_env(SLUICE_HTTP=self.broker.base, SLUICE_TOKEN=self.admin)
        done = run_example("py", "hz.example", env)
        self.assertEqual(done.returncode, 0, done)
        env = clean_env(SLUICE_HTTP=self.broker.base)
        done = run_example("py", "hz.example", env)
        self.assertEqual(done.returncode, 1, done)
        self.assertIn("unauthenticated", done.stdout + done.stderr)
        if shutil.which("node"):
            done = run_example("mjs", "hz.example", env)
            self.assertEqual(done.returncode, 1, done)
            self.assertIn("unauthenticated", done.stdout + done.stderr)


# ================================================================================================
# The examples
# ================================================================================================


def run_example(kind, topic, env):
    if kind == "py":
        cmd = [sys.executable, os.path.join(EXAMPLES, "publish_consume.py"), topic]
    else:
        cmd = ["node", os.path.join(EXAMPLES, "publish_consume.mjs"), topic]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)


class ExamplesTest(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker()
        cls.addClassCleanup(cls.broker.stop)

    def check_example(self, kind):
        topic = f"example-{kind}"
        env = clean_env(SLUICE_HTTP=self.broker.base)
        for run in (1, 2):  # the second run finds the topic and the group already there
            with self.subTest(run=run):
                done = run_example(kind, topic, env)
                self.assertEqual(done.returncode, 0, f"{done.stdout}\n{done.stderr}")
                lines = done.stdout.splitlines()
                got = [line for line in lines if line.startswith("offset=")]
                self.assertEqual(len(got), 3, done.stdout)
                for i, line in enumerate(got):
                    self.assertIn(f"key=order-{i + 1}", line)
                    self.assertIn("deliveries=1", line)
                self.assertIn("acked 3 messages", done.stdout)
        topic_now = self.assertOk(self.get(f"/api/v1/topics/{topic}"))
        self.assertEqual(topic_now["messages"], 6)
        group = topic_now["groups"][0]
        self.assertEqual((group["pending"], group["acked"], group["lag_messages"]), (0, 6, 0))
        # An API error exits 1 and says which.
        done = run_example(kind, "bad topic name", env)
        self.assertEqual(done.returncode, 1, done)
        self.assertIn("invalidArgument", done.stdout + done.stderr)

    def test_python_example(self):
        self.check_example("py")

    @unittest.skipUnless(shutil.which("node"), "node is not on PATH")
    def test_node_example(self):
        self.check_example("mjs")

    def test_default_topic_name(self):
        env = clean_env(SLUICE_HTTP=self.broker.base)
        cmd = [sys.executable, os.path.join(EXAMPLES, "publish_consume.py")]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(done.returncode, 0, done)
        self.assertOk(self.get("/api/v1/topics/http-example"))


def main():
    global SLUICED, SLUICE, EXAMPLES
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=True)
    parser.add_argument("--sluiced", required=True)
    parser.add_argument("--sluice", required=True)
    parser.add_argument("--examples", default=os.path.join(here, "..", "..", "examples", "http"))
    args, rest = parser.parse_known_args()
    SLUICED = os.path.abspath(args.sluiced)
    SLUICE = os.path.abspath(args.sluice)
    EXAMPLES = os.path.abspath(args.examples)
    atexit.register(lambda: [b.stop() for b in list(LIVE_BROKERS)])
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
