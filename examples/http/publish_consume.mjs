#!/usr/bin/env node
// Publish and consume through Sluice's JSON HTTP API (docs/http-api.md) with Node 20's
// built-in fetch; no npm packages.
//
//   SLUICE_HTTP=http://127.0.0.1:7401 [SLUICE_TOKEN=...] node publish_consume.mjs [TOPIC]
//
// Creates TOPIC (default "http-example") if it is missing, publishes a batch of 3 messages with a
// key, headers and a message id each, creates the group "example-readers" starting at the first
// of them (or finds it), fetches the 3 messages, prints them, acknowledges them and exits 0.
// Any API error prints its code and message to stderr and exits 1.

const BASE = (process.env.SLUICE_HTTP || "http://127.0.0.1:7401").replace(/\/+$/, "");
const TOKEN = process.env.SLUICE_TOKEN || "";
const GROUP = "example-readers";

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message} (HTTP ${status})`);
    Object.assign(this, { status, code, detail: message });
  }
}

// One API call; resolves to the decoded JSON answer or rejects with ApiError.
async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (TOKEN) headers["Authorization"] = `Bearer ${TOKEN}`;
  const answer = await fetch(BASE + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await answer.text();
  if (!answer.ok) {
    let error;
    try {
      error = JSON.parse(text).error;
    } catch {
      error = { code: `http${answer.status}`, message: text.trim() || answer.statusText };
    }
    throw new ApiError(answer.status, error.code, error.message);
  }
  return JSON.parse(text);
}

const topic = process.argv[2] || "http-example";
const t = `/api/v1/topics/${encodeURIComponent(topic)}`;

async function main() {
  try {
    await call("POST", "/api/v1/topics", { name: topic });
    console.log(`created topic ${topic}`);
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== "topicExists") throw e;
  }

  // One request, one commit: all three are on disk when the answer comes.
  const run = Date.now();
  const batch = [1, 2, 3].map((n) => ({
    key: `order-${n}`,
    headers: { "content-type": "application/json", source: "publish_consume.mjs" },
    id: `example-${run}-${n}`, // a retry with the same id is not stored twice
    payload: JSON.stringify({ order: n, amountCents: 1250 * n }),
  }));
  const { acks } = await call("POST", `${t}/messages`, { messages: batch });
  console.log(`published at offsets ${acks.map((a) => a.offset).join(", ")}`);
  const wanted = new Set(acks.map((a) => a.offset));

  // A new group starts at our first message; an existing one keeps its position.
  await call("POST", `${t}/groups`, { name: GROUP, start: { offset: acks[0].offset } });

  let consumer;
  const received = [];
  const seen = new Set();
  const deadline = Date.now() + 30_000;
  while ([...wanted].some((o) => !seen.has(o)) && Date.now() < deadline) {
    const body = { max: 10, timeout_ms: 5000 };
    if (consumer !== undefined) body.consumer = consumer; // the first fetch made an HTTP consumer
    const answer = await call("POST", `${t}/groups/${GROUP}/fetch`, body);
    consumer = answer.consumer;
    for (const m of answer.messages) {
      const headers = JSON.stringify(Object.fromEntries(Object.entries(m.headers).sort()));
      console.log(
        `offset=${m.offset} key=${m.key} id=${m.id} deliveries=${m.deliveries} ` +
          `headers=${headers} payload=${m.payload ?? m.payload_base64}`,
      );
      received.push(m);
      seen.add(m.offset);
    }
    if (answer.messages.length > 0) {
      // Ack the delivery we hold (delivery_id), durable before the answer.
      const { failures } = await call("POST", `${t}/groups/${GROUP}/ack`, {
        consumer,
        messages: answer.messages.map((m) => ({ offset: m.offset, delivery_id: m.delivery_id })),
      });
      for (const f of failures) {
        throw new ApiError(200, f.code, `ack of offset ${f.offset}: ${f.message}`);
      }
    }
  }
  const missing = [...wanted].filter((o) => !seen.has(o));
  if (missing.length > 0) {
    throw new ApiError(0, "timeout", `offsets ${missing.join(", ")} not received within 30 s`);
  }
  console.log(`acked ${received.length} messages`);
}

try {
  await main();
} catch (e) {
  if (e instanceof ApiError) {
    console.error(`error: ${e.code}: ${e.detail}`);
  } else {
    console.error(`error: cannot reach ${BASE}: ${e.cause?.message ?? e.message}`);
  }
  process.exit(1);
}
