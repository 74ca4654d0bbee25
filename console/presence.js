// The console's presence panel: who is on a channel, across every
// gateway, refreshed every second, with a button that disconnects a user
// everywhere. It uses the credential pasted in the token field (a
// presence or control token, or a control key); the page holds nothing
// of its own.

const $ = (id) => document.getElementById(id);
const every = 1000;

export function initPresence(config, authHeaders, describe) {
  if (!config.presence) {
    $("presence-section").hidden = true;
    return;
  }
  const panel = { channel: "", timer: null, users: [] };
  window.ssegateConsole.presence = panel;

  const render = (answer) => {
    $("presence-count").textContent = `${answer.connections} connection(s), ${answer.users.length} user(s)`;
    panel.users = answer.users;
    $("presence-users").tBodies[0].replaceChildren(...answer.users.map((u) => {
      const tr = document.createElement("tr");
      tr.dataset.sub = u.sub;
      for (const text of [u.sub, String(u.connections), (u.connection_ids || []).join(" ")]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const td = document.createElement("td");
      if (config.control) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Disconnect";
        b.addEventListener("click", () => disconnect(u.sub));
        td.append(b);
      }
      tr.append(td);
      return tr;
    }));
  };

  const poll = async () => {
    const ch = panel.channel;
    if (!ch) return;
    const url = new URL(config.presence, location.href);
    url.searchParams.set("channel", ch);
    try {
      const resp = await fetch(url, { headers: authHeaders(), cache: "no-store" });
      if (ch !== panel.channel) return;
      if (!resp.ok) {
        $("presence-result").textContent = await describe(resp);
        $("presence-result").className = "error";
        render({ connections: 0, users: [] });
      } else {
        $("presence-result").textContent = "";
        render(await resp.json());
      }
    } catch (err) {
      $("presence-result").textContent = err.message;
    }
  };

  const disconnect = async (sub) => {
    const resp = await fetch(config.control + "/disconnect", {
      method: "POST",
      headers: { ...authHeaders(), "Content-Type": "application/json" },
      body: JSON.stringify({ sub, channels: [panel.channel] }),
    });
    const out = $("presence-result");
    if (resp.status === 202) {
      out.textContent = `disconnected ${sub} (action ${(await resp.json()).id})`;
      out.className = "ok";
    } else {
      out.textContent = "disconnect: " + (await describe(resp));
      out.className = "error";
    }
    poll();
  };

  $("presence").addEventListener("submit", (e) => {
    e.preventDefault();
    panel.channel = $("presence-channel").value.trim();
    clearInterval(panel.timer);
    poll();
    panel.timer = setInterval(poll, every);
  });
}
