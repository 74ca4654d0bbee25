// Publishes one event to ssegate over HTTP with Node's global fetch, twice
// with the same Idempotency-Key, as a backend retrying after a timeout
// would, and prints both answers as JSON. Run by TestPublishFromNode.
const url = new URL(process.env.SSEGATE_URL);
const key = process.env.SSEGATE_PUBLISH_KEY;
if (!key) throw new Error("SSEGATE_PUBLISH_KEY is empty");
url.searchParams.set("channel", "orders.eu");
url.searchParams.set("event", "order.created");

async function publish() {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${key}`,
      "Idempotency-Key": "order-42-created",
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ order: 42 }),
    signal: AbortSignal.timeout(10000),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`publish: ${res.status} ${body.error}: ${body.detail}`);
  return { status: res.status, id: body.id };
}

const first = await publish();
const retry = await publish();
console.log(JSON.stringify({ first, retry }));
