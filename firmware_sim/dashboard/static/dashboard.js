// fwsim dashboard: live updates over Server-Sent Events and the action buttons.
// No framework, no build step. Text from the server goes into the page with textContent;
// only fragments the server rendered and escaped (panels, the SVG diagram, the QR code) use
// innerHTML.
"use strict";

(function () {
  const body = document.body;
  const base = body.dataset.base || "/ui";
  const page = body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const statusBox = document.getElementById("status");
  // longer than the cloud's own call timeout (20 s, virtual: wall at --speed 1), so that its
  // answer - a 408 "Timed out." - is what the page shows
  const TIMEOUT_MS = 30000;
  let statusTimer = null;

  function say(message, bad) {
    if (!statusBox) return;
    statusBox.textContent = message;
    statusBox.classList.toggle("bad", !!bad);
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => { statusBox.textContent = ""; }, bad ? 12000 : 6000);
  }

  async function api(method, path, payload) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    const headers = { "Accept": "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrf;
    }
    try {
      const response = await fetch(base + path, {
        method, headers, credentials: "same-origin", signal: controller.signal,
        body: method === "GET" ? undefined : JSON.stringify(payload || {}),
      });
      let data = {};
      try { data = await response.json(); } catch (e) { data = {}; }
      if (response.status === 401 && page !== "login") {
        location.assign(base + "/login");
      }
      return { ok: response.ok && data.ok !== false, status: response.status, data };
    } catch (e) {
      const message = e.name === "AbortError" ? "the server did not answer in time"
        : "the server cannot be reached";
      return { ok: false, status: 0, data: { error: message } };
    } finally {
      clearTimeout(timer);
    }
  }

  function errorText(result) {
    return (result.data && result.data.error) || ("failed (HTTP " + result.status + ")");
  }

  // -- log in / log out ------------------------------------------------------------------------

  async function loginFromFragment() {
    const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (!match) return;
    history.replaceState(null, "", location.pathname + location.search);
    const note = document.getElementById("login-status");
    if (note) note.textContent = "Logging in…";
    const result = await api("POST", "/login", { token: decodeURIComponent(match[1]) });
    if (result.ok) {
      location.replace(result.data.next || base + "/");
    } else if (note) {
      note.textContent = errorText(result);
    }
  }

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      const result = await api("POST", "/logout", {});
      location.assign(result.ok ? result.data.next : base + "/login");
    });
  }

  // -- reveal ---------------------------------------------------------------------------------

  async function reveal(button, show) {
    const name = button.dataset.reveal;
    const target = document.querySelector('[data-secret-of="' + CSS.escape(name) + '"]');
    const qr = document.getElementById("qr");
    if (!show) {
      button.setAttribute("aria-pressed", "false");
      button.textContent = "reveal";
      if (target) { target.hidden = true; target.textContent = ""; }
      if (qr) qr.hidden = true;
      return;
    }
    const result = await api("GET", "/api/devices/" + encodeURIComponent(name) + "/secret");
    if (!result.ok) { say(errorText(result), true); return; }
    button.setAttribute("aria-pressed", "true");
    button.textContent = "hide";
    if (target) {
      target.textContent = result.data.secret === null ? "(none)" : (result.data.secret || "(empty)");
      target.hidden = false;
    }
    if (qr) qr.hidden = false;
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-reveal]");
    if (button) reveal(button, button.getAttribute("aria-pressed") !== "true");
  });

  function updateClaim(row) {
    const scope = page === "device" ? document : document.querySelector(
      'tr[data-device="' + CSS.escape(row.name) + '"]');
    if (!scope) return;
    const masked = scope.querySelector('[data-field="claim"]');
    const changed = !masked || masked.textContent !== row.claim;
    if (masked && changed) masked.textContent = row.claim;
    const button = scope.querySelector("button[data-reveal]");
    if (!button) return;
    const pressed = button.getAttribute("aria-pressed") === "true";
    if (!row.claim_length) {
      if (pressed) reveal(button, false);
      button.hidden = true;
    } else {
      button.hidden = false;
      if (pressed && changed) reveal(button, true);
    }
  }

  // -- the live stream ------------------------------------------------------------------------

  const conn = document.getElementById("conn");

  function openStream(query, handlers) {
    const source = new EventSource(base + "/api/stream" + query);
    source.onopen = () => { if (conn) { conn.textContent = "live"; conn.classList.remove("lost"); } };
    source.onerror = async () => {
      if (conn) { conn.textContent = "reconnecting…"; conn.classList.add("lost"); }
      if (source.readyState === EventSource.CLOSED) {
        const check = await api("GET", "/api/devices");
        if (check.status !== 401) setTimeout(() => openStream(query, handlers), 3000);
      }
    };
    source.addEventListener("expired", () => { source.close(); location.assign(base + "/login"); });
    source.addEventListener("gone", (event) => {
      source.close();
      say(JSON.parse(event.data).error, true);
    });
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    }
    return source;
  }

  function setText(scope, field, value) {
    const element = scope.querySelector('[data-field="' + field + '"]');
    if (element && element.textContent !== value) element.textContent = value;
  }

  function setState(element, state) {
    if (!element) return;
    element.textContent = state;
    element.className = "badge state-" + state;
  }

  function updateRows(rows) {
    const table = document.querySelector("#devices tbody");
    if (!table) return;
    const shown = Array.from(table.querySelectorAll("tr[data-device]")).map((tr) => tr.dataset.device);
    if (shown.join("\n") !== rows.map((row) => row.name).join("\n")) {
      location.reload();
      return;
    }
    for (const row of rows) {
      const tr = table.querySelector('tr[data-device="' + CSS.escape(row.name) + '"]');
      setState(tr.querySelector('[data-field="state"]'), row.state);
      for (const field of ["session", "claimed_text", "owner_text", "product_text"]) {
        setText(tr, field, row[field]);
      }
      updateClaim(row);
    }
  }

  // -- the device page ------------------------------------------------------------------------

  const MAX_LOG = 800;

  function appendLog(lines) {
    const log = document.getElementById("log");
    if (!log || !lines.length) return;
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    for (const line of lines) {
      const span = document.createElement("span");
      span.className = "lvl-" + line.level;
      span.textContent = line.text;
      log.append(span, "\n");
    }
    while (log.childNodes.length > MAX_LOG * 2) {
      log.removeChild(log.firstChild);
    }
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  function appendEvents(events) {
    const table = document.getElementById("events");
    if (!table || !events.length) return;
    const wrap = table.closest(".events-wrap");
    const atEnd = !wrap || wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40;
    for (const event of events) {
      const tr = document.createElement("tr");
      for (const text of [event.t.toFixed(3), event.direction === "up" ? "device → cloud"
        : "cloud → device", event.name, event.data]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      table.append(tr);
    }
    while (table.rows.length > 200) table.deleteRow(0);
    if (wrap && atEnd) wrap.scrollTop = wrap.scrollHeight;
  }

  // A panicking device runs no code: every button but Reset, Power-cycle (and the cloud's
  // "Issue a claim code") is disabled, with the reason as its tooltip.
  function showPanic(panicking) {
    const note = body.dataset.panicNote || "";
    for (const button of document.querySelectorAll(".actions button:not([data-panic-ok])")) {
      if (button.disabled === panicking) continue;
      button.disabled = panicking;
      if (panicking) button.title = note;
      else if (button.title === note) button.removeAttribute("title");
    }
  }

  function updateDevice(payload) {
    if (payload.row) {
      setState(document.getElementById("state-badge"), payload.row.state);
      setText(document, "summary", payload.row.summary);
      updateClaim(payload.row);
      if (payload.row.kind === "particle") showPanic(payload.row.state === "panic");
    }
    if (payload.session_html !== undefined) document.getElementById("session").innerHTML = payload.session_html;
    if (payload.why_html !== undefined) document.getElementById("why").innerHTML = payload.why_html;
    if (payload.busy !== undefined) {
      const busy = document.getElementById("busy");
      if (busy) { busy.hidden = !payload.busy; busy.textContent = payload.busy ? payload.busy + " in progress" : ""; }
    }
    if (payload.dct !== undefined) {
      const dct = document.getElementById("dct");
      if (dct) dct.textContent = payload.dct + "\n";
    }
    if (payload.claimed_byte !== undefined) {
      const claimed = document.getElementById("claimed-byte");
      if (claimed) claimed.textContent = payload.claimed_byte;
    }
    if (payload.qr !== undefined) {
      const qr = document.getElementById("qr");
      if (qr && payload.qr) {
        const caption = qr.querySelector("figcaption");
        qr.innerHTML = payload.qr;
        if (caption) qr.append(caption);
        const shown = document.querySelector('button[data-reveal][aria-pressed="true"]');
        if (shown) reveal(shown, true);
      }
    }
    if (payload.diagram !== undefined) {
      const diagram = document.getElementById("diagram");
      const atEnd = diagram.scrollHeight - diagram.scrollTop - diagram.clientHeight < 40;
      diagram.innerHTML = payload.diagram;
      if (atEnd) diagram.scrollTop = diagram.scrollHeight;  // the latest step in view
    }
    if (payload.diagram_text !== undefined) document.getElementById("diagram-text").textContent = payload.diagram_text;
    appendLog(payload.log || []);
    appendEvents(payload.events || []);
  }

  // What an action did, in words (the buttons of one action differ by their body).
  function doneText(action, sent, data) {
    switch (action) {
      case "power-cycle":
        return "power cut for " + (data.off_s === undefined ? 1 : data.off_s) + " s; it boots again";
      case "reset": return "reset; it boots again";
      case "listening":
        return "listening mode " + (data.listening ? "entered" : "left");
      case "network":
        return sent.up ? "network restored (it joins its access point again)"
          : "network cut (it left its access point)";
      case "drop-session":
        if (!data.dropped) return "the cloud had no session to drop";
        return "session dropped by the cloud; " + (data.reconnect ? "the device reconnects now"
          : "the device notices at its next message");
      case "key-change":
        return data.sent ? "key change sent; the device starts a full session"
          : "no key change sent (the device has no session)";
      case "reclaim": return "reclaimed (unassigned)";
      default: return action + " done";
    }
  }

  function actionButtons() {
    return Array.from(document.querySelectorAll(".actions button"));
  }

  // While a request runs the buttons say so (aria-disabled, not disabled: a disabled button
  // loses the keyboard focus) and further clicks are ignored: a double click sends one request.
  let acting = false;

  async function act(action, payload, after) {
    if (acting) return null;
    acting = true;
    const name = body.dataset.device;
    const buttons = actionButtons();
    for (const button of buttons) button.setAttribute("aria-disabled", "true");
    document.querySelector(".actions").setAttribute("aria-busy", "true");
    try {
      const result = await api("POST", "/api/devices/" + encodeURIComponent(name) + "/" + action, payload);
      if (result.ok) {
        if (after) after(result.data);
        else say(name + ": " + doneText(action, payload || {}, result.data));
      } else {
        const error = errorText(result);
        // the server's messages often name the device already ("lamp: power-cycle in
        // progress", "lamp is not connected to the cloud")
        const named = error.startsWith(name + ": ") || error.startsWith(name + " ");
        say(named ? error : name + ": " + error, true);
      }
      return result;
    } finally {
      for (const button of buttons) button.removeAttribute("aria-disabled");
      document.querySelector(".actions").removeAttribute("aria-busy");
      acting = false;
    }
  }

  function setupDevice() {
    for (const button of document.querySelectorAll(".actions button[data-action]")) {
      button.addEventListener("click", () => {
        const payload = button.dataset.body ? JSON.parse(button.dataset.body) : {};
        act(button.dataset.action, payload, button.dataset.revealAfter ? () => {
          say("claim button pressed: a new secret");
          const reveal_ = document.querySelector("button[data-reveal]");
          setTimeout(() => { if (reveal_) { reveal_.hidden = false; reveal(reveal_, true); } }, 400);
        } : null);
      });
    }
    const newCode = document.getElementById("new-code-form");
    if (newCode) newCode.addEventListener("submit", (event) => {
      event.preventDefault();
      act("new-claim-code", { owner: newCode.elements.owner.value }, (data) => {
        document.getElementById("code").value = data.code;
        say("claim code issued for " + data.owner + "; now set it on the device");
      });
    });
    const setCode = document.getElementById("claim-code-form");
    if (setCode) setCode.addEventListener("submit", (event) => {
      event.preventDefault();
      act("claim-code", { code: setCode.elements.code.value }, () => {
        say("claim code stored on the device (SET_CLAIM_CODE: 0)");
      });
    });
    const cloudCall = document.getElementById("cloud-call-form");
    if (cloudCall) cloudCall.addEventListener("submit", (event) => {
      event.preventDefault();
      const kind = event.submitter && event.submitter.dataset.kind === "get" ? "get" : "call";
      const target = cloudCall.elements.name.value;
      const payload = kind === "call" ? { name: target, arg: cloudCall.elements.arg.value } : { name: target };
      act(kind, payload, (data) => {
        say(kind === "call" ? target + " returned " + data.return_value
          : target + " = " + JSON.stringify(data.result));
      });
    });
    const tbClaim = document.getElementById("tb-claim-form");
    if (tbClaim) tbClaim.addEventListener("submit", (event) => {
      event.preventDefault();
      act("claim", { customer: tbClaim.elements.customer.value, secret: tbClaim.elements.secret.value },
        (data) => { say(data.customer + ": " + data.response + " (" + data.reason + ")", data.response !== "SUCCESS"); });
    });
    openStream("?device=" + encodeURIComponent(body.dataset.device) + "&after=" + body.dataset.after,
      { device: updateDevice });
    // the newest in view, as the live updates keep it: the log, the diagram and the events
    for (const element of [document.getElementById("log"), document.getElementById("diagram"),
      document.querySelector(".events-wrap")]) {
      if (element) element.scrollTop = element.scrollHeight;
    }
  }

  if (page !== "login" && /(?:^#|&)token=/.test(location.hash)) {
    history.replaceState(null, "", location.pathname + location.search);  // already logged in
  }
  if (page === "login") loginFromFragment();
  else if (page === "index") openStream("", { rows: updateRows });
  else if (page === "device") setupDevice();
})();
