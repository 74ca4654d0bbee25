// A Node.js backend for ssegate, as the README shows one: it mints one-time
// tickets with jose and publishes events with the nats package. The backend
// test (backend_test.go) starts it and drives it with eventsource.mjs;
// it can also run by hand next to a gateway:
//
//   SSEGATE_JWT_SECRET=... SSEGATE_NATS=nats://127.0.0.1:4222 \
//   SSEGATE_ORIGIN=http://localhost:8080 node backend.mjs
//
// GET /ticket answers {"ticket": "..."} for the signed-in user (here always
// alice), for the page to open its EventSource with. POST /publish with
// {"channel", "event", "data"} stores an event and answers {"seq": N}, its
// stream sequence, which is the event's id.

import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { connect, headers } from "nats";

const env = (name) => {
  const v = process.env[name];
  // An empty secret would sign tokens the gateway refuses as invalid_token.
  if (!v) throw new Error(`environment variable ${name} is required`);
  return v;
};

const secret = new TextEncoder().encode(env("SSEGATE_JWT_SECRET"));
const origin = env("SSEGATE_ORIGIN"); // the page's origin, for CORS

// mintTicket signs a ticket for one EventSource connection: single use
// (jti), short-lived (the gateway refuses more than ticket_max_lifetime,
// 60s by default), for the channels the user may read.
function mintTicket(sub) {
  return new SignJWT({ channels: ["user.{sub}"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime("30s")
    .sign(secret);
}

const nc = await connect({ servers: env("SSEGATE_NATS"), name: "ssegate-node-backend" });
const js = nc.jetstream();

// publish stores an event on the channel's subject; the ack carries its
// stream sequence.
async function publish(channel, event, data) {
  const h = headers();
  if (event) h.set("Sse-Event", event);
  const ack = await js.publish(`events.${channel}`, new TextEncoder().encode(data), { headers: h });
  return ack.seq;
}

async function readJSON(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1 << 20) throw new Error("body too large");
  }
  return JSON.parse(body);
}

const server = createServer(async (req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { "Content-Type": "application/json", "Access-Control-Allow-Origin": origin, Vary: "Origin" });
    res.end(JSON.stringify(body));
  };
  try {
    const url = new URL(req.url, "http://backend");
    if (req.method === "GET" && url.pathname === "/ticket") {
      return reply(200, { ticket: await mintTicket("alice") });
    }
    if (req.method === "POST" && url.pathname === "/publish") {
      const { channel, event, data } = await readJSON(req);
      return reply(200, { seq: await publish(channel, event, data) });
    }
    reply(404, { error: "not_found" });
  } catch (err) {
    reply(500, { error: String(err?.message ?? err) });
  }
});

server.listen(0, "127.0.0.1", () => {
  console.log(`LISTENING http://127.0.0.1:${server.address().port}`);
});

const stop = async () => {
  server.close();
  await nc.drain();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
