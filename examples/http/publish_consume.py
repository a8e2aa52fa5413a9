#!/usr/bin/env python3
"""Publish and consume through Sluice's JSON HTTP API (docs/http-api.md), standard library only.

    SLUICE_HTTP=http://127.0.0.1:7401 [SLUICE_TOKEN=...] python3 publish_consume.py [TOPIC]

Creates TOPIC (default "http-example") if it is missing, publishes a batch of 3 messages with a
key, headers and a message id each, creates the group "example-readers" starting at the first
of them (or finds it), fetches the 3 messages, prints them, acknowledges them and exits 0.
Any API error prints its code and message to stderr and exits 1.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = os.environ.get("SLUICE_HTTP", "http://127.0.0.1:7401").rstrip("/")
TOKEN = os.environ.get("SLUICE_TOKEN", "")
GROUP = "example-readers"


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status, self.code, self.message = status, code, message


def call(method, path, body=None):
    """One API call; returns the decoded JSON answer or raises ApiError."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if TOKEN:
        request.add_header("Authorization", "Bearer " + TOKEN)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as failure:
        try:
            error = json.load(failure)["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": f"http{failure.code}", "message": failure.reason}
        raise ApiError(failure.code, error["code"], error["message"]) from None


def seg(name):
    return urllib.parse.quote(name, safe="")


def main():
    topic = sys.argv[1] if len(sys.argv) > 1 else "http-example"
    t = f"/api/v1/topics/{seg(topic)}"

    try:
        call("POST", "/api/v1/topics", {"name": topic})
        print(f"created topic {topic}")
    except ApiError as e:
        if e.code != "topicExists":
            raise

    # One request, one commit: all three are on disk when the answer comes.
    run = str(int(time.time() * 1000))
    batch = [
        {
            "key": f"order-{n}",
            "headers": {"content-type": "application/json", "source": "publish_consume.py"},
            "id": f"example-{run}-{n}",  # a retry with the same id is not stored twice
            "payload": json.dumps({"order": n, "amountCents": 1250 * n}),
        }
        for n in (1, 2, 3)
    ]
    acks = call("POST", f"{t}/messages", {"messages": batch})["acks"]
    print("published at offsets", ", ".join(str(a["offset"]) for a in acks))
    wanted = {a["offset"] for a in acks}

    # A new group starts at our first message; an existing one keeps its position.
    call("POST", f"{t}/groups", {"name": GROUP, "start": {"offset": acks[0]["offset"]}})

    consumer = None
    received = []
    deadline = time.monotonic() + 30
    while wanted - {m["offset"] for m in received} and time.monotonic() < deadline:
        body = {"max": 10, "timeout_ms": 5000}
        if consumer is not None:
            body["consumer"] = consumer  # the first fetch made an HTTP consumer
        answer = call("POST", f"{t}/groups/{GROUP}/fetch", body)
        consumer = answer["consumer"]
        for m in answer["messages"]:
            print(f"offset={m['offset']} key={m['key']} id={m['id']} "
                  f"deliveries={m['deliveries']} headers={json.dumps(m['headers'], sort_keys=True)} "
                  f"payload={m.get('payload', m.get('payload_base64'))}")
        received.extend(answer["messages"])
        if answer["messages"]:
            # Ack the delivery we hold (delivery_id), durable before the answer.
            result = call("POST", f"{t}/groups/{GROUP}/ack", {
                "consumer": consumer,
                "messages": [{"offset": m["offset"], "delivery_id": m["delivery_id"]}
                             for m in answer["messages"]],
            })
            for f in result["failures"]:
                raise ApiError(200, f["code"], f"ack of offset {f['offset']}: {f['message']}")
    missing = wanted - {m["offset"] for m in received}
    if missing:
        raise ApiError(0, "timeout", f"offsets {sorted(missing)} not received within 30 s")
    print(f"acked {len(received)} messages")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ApiError as e:
        print(f"error: {e.code}: {e.message}", file=sys.stderr)
        sys.exit(1)
    except (urllib.error.URLError, OSError) as e:
        print(f"error: cannot reach {BASE}: {e}", file=sys.stderr)
        sys.exit(1)
