/* The sandbox page: a Slack-like client for the local Slack fake.
 *
 * It reads what the acting person sees from /page/api/state, re-reads it when the server says
 * something changed (Server-Sent Events on /page/api/events, with polling as a fallback), and
 * sends what they do to /page/api/*; the sandbox server turns each into a real, signed Slack
 * request to the bot.
 */
(function () {
  "use strict";
  const M = window.Mrkdwn;
  const BK = window.BlockKit;
  const esc = M.escapeHtml;
  const $ = (sel, root) => (root || document).querySelector(sel);

  const params = new URLSearchParams(location.search);
  const S = {
    data: null,
    me: params.get("as") || localStorage.getItem("signoff-sandbox-user") || null,
    channel: params.get("channel") || localStorage.getItem("signoff-sandbox-channel") || null,
    focusTs: params.get("ts"),
    collapsed: new Set(),
    seen: {},
    sigs: new Map(),
    modalKey: null,
    localErrors: {},
    stickToBottom: true,
    home: params.get("home") === "1",
    refreshing: null,
    again: false,
    live: false,
  };

  // ------------------------------------------------------------------------ plumbing ----

  async function api(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: S.me, ...body }),
      });
    } catch (err) {
      return { ok: false, error: "The sandbox server is not reachable." };
    }
    try {
      return await response.json();
    } catch (err) {
      return { ok: false, error: `HTTP ${response.status}` };
    }
  }

  function refresh() {
    if (S.refreshing) {
      S.again = true;
      return S.refreshing;
    }
    S.refreshing = (async () => {
      try {
        do {
          S.again = false;
          const asked = S.me;
          const query = asked ? `?user=${encodeURIComponent(asked)}` : "";
          const response = await fetch(`/page/api/state${query}`, { cache: "no-store" });
          const data = await response.json();
          if (S.me !== asked) {
            S.again = true; // the person was switched while this was in flight: ask again
            continue;
          }
          if (!data.ok && S.me) {
            // An unknown ?as= (or a stale saved choice): say so, then act as the first person.
            toast(`${data.error || "Unknown user"}; acting as the first person instead.`, "error");
            localStorage.removeItem("signoff-sandbox-user");
            S.me = null;
            S.again = true;
            continue;
          }
          S.data = data;
          S.me = data.me;
          render();
        } while (S.again);
      } catch (err) {
        setLive(false);
      } finally {
        S.refreshing = null;
      }
    })();
    return S.refreshing;
  }

  function connect() {
    if (!window.EventSource) return;
    const source = new EventSource("/page/api/events");
    source.onopen = () => setLive(true);
    source.onmessage = (event) => {
      setLive(true);
      let seq = 0;
      try { seq = JSON.parse(event.data).seq; } catch (err) { /* keep 0 */ }
      if (!S.data || seq !== S.data.seq) refresh();
    };
    source.onerror = () => setLive(false);
  }

  function setLive(live) {
    S.live = live;
    $("#live-dot").classList.toggle("on", live);
    $("#live-text").textContent = live ? "live" : "reconnecting…";
  }

  // Polling keeps the page right if the event stream is down (e.g. behind a buffering proxy).
  setInterval(() => { if (!S.live) refresh(); }, 2000);

  // -------------------------------------------------------------------------- lookups ----

  function user(id) {
    return (S.data.users || []).find((u) => u.id === id);
  }

  function userName(id) {
    if (id === "USLACKBOT") return "Slackbot";
    const u = user(id);
    return u ? u.name : id;
  }

  function channelName(id) {
    const c = (S.data.channels || []).find((ch) => ch.id === id);
    return c ? c.name : id;
  }

  function groupHandle(id) {
    const g = (S.data.usergroups || []).find((x) => x.id === id);
    return g ? g.handle : id;
  }

  function mrkdwnCtx() {
    return { userName, channelName, groupHandle, me: S.me };
  }

  function currentChannel() {
    const channels = S.data.channels || [];
    return channels.find((c) => c.id === S.channel)
      || channels.find((c) => c.name === "signoff") || channels[0];
  }

  function hue(id) {
    let h = 0;
    for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) % 360;
    return h;
  }

  function sender(m) {
    if (m.user === "USLACKBOT") return { name: "Slackbot", app: false, initials: "S", color: "#1d9bd1" };
    if (m.bot_id || (S.data.bot && m.user === S.data.bot.user_id)) {
      return { name: S.data.bot.name || "Signoff", app: true, initials: "✓", color: "#4a154b" };
    }
    const u = user(m.user) || { name: m.user || "someone", real_name: m.user || "someone" };
    const name = u.real_name || u.name;
    const initials = name.split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
    return { name, app: false, initials, color: `hsl(${hue(u.id || name)}, 45%, 42%)` };
  }

  function timeOfTs(ts) {
    const d = new Date(parseFloat(ts) * 1000);
    return d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }

  // ------------------------------------------------------------------------ rendering ----

  function render() {
    const data = S.data;
    if (!data) return;
    const channel = currentChannel();
    if (channel) S.channel = channel.id;
    renderPeople();
    renderSidebar();
    if (S.home) {
      renderHome();
    } else {
      renderHeader(channel);
      renderMessages(channel);
    }
    $("#composer").hidden = S.home;
    renderModal();
    renderLog();
    const bot = data.bot_url ? ` at <code>${esc(data.bot_url)}</code>` : " (the bot is starting…)";
    $("#bot-url").innerHTML = bot;
  }

  function renderPeople() {
    const picker = $("#user-picker");
    const people = S.data.people || [];
    const want = people.map((id) => `${id}:${userName(id)}`).join(",");
    if (picker.dataset.people !== want) {
      picker.innerHTML = people.map((id) => {
        const u = user(id);
        return `<option value="${esc(id)}">${esc(u.real_name || u.name)} (@${esc(u.name)})</option>`;
      }).join("");
      picker.dataset.people = want;
    }
    picker.value = S.me;
  }

  function unreadCount(channelId) {
    const seen = S.seen[channelId];
    const msgs = S.data.messages[channelId] || [];
    if (seen === undefined) {
      S.seen[channelId] = msgs.length ? msgs[msgs.length - 1].ts : "0";
      return 0;
    }
    return msgs.filter((m) => m.ts > seen && m.user !== S.me).length;
  }

  function renderSidebar() {
    const channels = S.data.channels || [];
    const item = (c) => {
      const unread = c.id === S.channel ? 0 : unreadCount(c.id);
      const prefix = c.is_im ? '<span class="dm-dot"></span>' : '<span class="hash">#</span>';
      const label = c.is_im ? c.label : c.name;
      return `<li><button type="button" class="nav-item${c.id === S.channel && !S.home ? " active" : ""}${unread ? " unread" : ""}"`
        + ` data-channel="${esc(c.id)}">${prefix}<span class="nav-label">${esc(label)}</span>`
        + `${unread ? `<span class="badge">${unread}</span>` : ""}</button></li>`;
    };
    $("#open-home").classList.toggle("active", S.home);
    $("#channel-list").innerHTML = channels.filter((c) => !c.is_im).map(item).join("");
    const dms = channels.filter((c) => c.is_im);
    $("#dm-list").innerHTML = dms.map(item).join("");
    $("#dm-title").hidden = dms.length === 0;
  }

  function renderHeader(channel) {
    if (!channel) return;
    $("#channel-name").textContent = channel.is_im ? channel.label : `#${channel.name}`;
    const meta = [`${channel.members} member${channel.members === 1 ? "" : "s"}`];
    if (channel.topic) meta.push(channel.topic);
    $("#channel-meta").textContent = meta.join(" · ");
    const input = $("#composer-input");
    const where = channel.is_im ? channel.label : `#${channel.name}`;
    input.placeholder = `Message ${where} — try /signoff run data_pipeline`;
    document.title = `${where} · Signoff sandbox`;
  }

  // The app's Home tab: the view the bot published for this person (views.publish).
  function renderHome() {
    const home = S.data.home;
    $("#channel-name").textContent = "Signoff";
    $("#channel-meta").textContent = "Home";
    document.title = "Signoff · Home · Signoff sandbox";
    const box = $("#messages");
    box.dataset.channel = "";
    S.sigs = new Map();
    if (!home) {
      box.innerHTML = '<div class="empty"><h2>Opening the Home tab…</h2>'
        + "<p>Slack sent <code>app_home_opened</code>; the bot publishes this tab with"
        + " <code>views.publish</code>.</p></div>";
      return;
    }
    const ctx = { mrkdwn: mrkdwnCtx(), surface: "home" };
    box.innerHTML = `<div class="home-view" data-view-id="${esc(home.id)}" data-testid="home">`
      + `${BK.renderBlocks(home.payload.blocks || [], ctx)}</div>`;
  }

  async function openHome() {
    S.home = true;
    render();
    const result = await api("/page/api/home", {});
    if (!result.ok || result.error) toast(result.error || "The bot did not answer.", "error");
    refresh();
  }

  function messageBody(m) {
    const ctx = { mrkdwn: mrkdwnCtx(), surface: "message", picks: m.picks || {} };
    if (m.blocks && m.blocks.length) return BK.renderBlocks(m.blocks, ctx);
    return `<div class="bk-text">${M.render(m.text, ctx.mrkdwn)}</div>`;
  }

  function messageHtml(m, changed, reply) {
    const who = sender(m);
    const classes = ["msg"];
    if (reply) classes.push("reply");
    if (m.ephemeral) classes.push("ephemeral");
    if (changed) classes.push("flash");
    if (S.focusTs === m.ts) classes.push("focused");
    const only = m.ephemeral
      ? `<div class="only-you"><span class="eye" aria-hidden="true">${M.emojify(":eye:")}</span> Only visible to you`
        + ` <button type="button" class="link dismiss">Dismiss</button></div>` : "";
    return `<div class="${classes.join(" ")}" id="m-${m.ts.replace(".", "-")}" data-ts="${esc(m.ts)}"`
      + ` data-channel="${esc(m.channel)}" data-testid="message">`
      + `<div class="avatar" style="background:${who.color}" aria-hidden="true">${esc(who.initials)}</div>`
      + `<div class="msg-main">${only}<div class="msg-head"><span class="sender">${esc(who.name)}</span>`
      + `${who.app ? '<span class="app-badge">APP</span>' : ""}`
      + `<time class="msg-time" title="${esc(new Date(parseFloat(m.ts) * 1000).toString())}">${timeOfTs(m.ts)}</time>`
      + `${m.edited ? '<span class="edited">(edited)</span>' : ""}</div>`
      + `<div class="msg-content">${messageBody(m)}</div></div></div>`;
  }

  function emptyChannel(channel) {
    const chips = (S.data.suggestions || []).map((s) =>
      `<button type="button" class="chip" data-suggest="${esc(s)}">${esc(s)}</button>`).join("");
    return `<div class="empty"><div class="empty-icon">✓</div>`
      + `<h2>This is the very beginning of ${channel.is_im ? esc(channel.label) : `#${esc(channel.name)}`}</h2>`
      + `<p>Start a workflow run and sign it off right here. Try:</p>`
      + `<div class="chips">${chips}</div></div>`;
  }

  function renderMessages(channel) {
    const box = $("#messages");
    if (!channel) { box.innerHTML = ""; return; }
    const msgs = S.data.messages[channel.id] || [];
    const switched = box.dataset.channel !== channel.id;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    const oldTop = box.scrollTop;

    const newSigs = new Map();
    const changed = (m) => {
      const sig = JSON.stringify([m.text, m.blocks, m.edited]);
      newSigs.set(m.ts, sig);
      return !switched && S.sigs.has(m.ts) && S.sigs.get(m.ts) !== sig;
    };
    const roots = [];
    const replies = new Map();
    const byTs = new Set(msgs.map((m) => m.ts));
    for (const m of msgs) {
      if (m.thread_ts && m.thread_ts !== m.ts && byTs.has(m.thread_ts)) {
        if (!replies.has(m.thread_ts)) replies.set(m.thread_ts, []);
        replies.get(m.thread_ts).push(m);
      } else {
        roots.push(m);
      }
    }
    const html = [];
    if (!msgs.length) html.push(emptyChannel(channel));
    for (const m of roots) {
      html.push(messageHtml(m, changed(m), false));
      const thread = replies.get(m.ts);
      if (!thread) continue;
      const collapsed = S.collapsed.has(m.ts);
      const people = [...new Set(thread.map((r) => sender(r).initials))].slice(0, 4);
      const last = thread[thread.length - 1];
      const parts = thread.map((r) => messageHtml(r, changed(r), true)).join("");
      html.push(`<div class="thread${collapsed ? " collapsed" : ""}" data-thread="${esc(m.ts)}">`
        + `<button type="button" class="thread-toggle" aria-expanded="${!collapsed}">`
        + `<span class="thread-faces">${people.map((p) => `<span>${esc(p)}</span>`).join("")}</span>`
        + `<span class="thread-count">${thread.length} ${thread.length === 1 ? "reply" : "replies"}</span>`
        + `<span class="thread-last">Last reply ${timeOfTs(last.ts)}</span>`
        + `<span class="thread-chevron">${collapsed ? "Show thread" : "Hide thread"}</span></button>`
        + `<div class="thread-replies">${parts}</div></div>`);
    }
    box.innerHTML = html.join("");
    box.dataset.channel = channel.id;
    S.sigs = newSigs;
    if (msgs.length) S.seen[channel.id] = msgs[msgs.length - 1].ts;

    if (S.focusTs && $(`#m-${S.focusTs.replace(".", "-")}`)) {
      $(`#m-${S.focusTs.replace(".", "-")}`).scrollIntoView({ block: "center" });
      S.focusTs = null;
    } else if (switched || nearBottom || S.stickToBottom) {
      box.scrollTop = box.scrollHeight;
    } else {
      box.scrollTop = oldTop;
    }
    S.stickToBottom = false;
  }

  function renderLog() {
    const log = $("#log");
    if (log.hidden) return;
    const calls = (S.data.calls || []).slice().reverse();
    $("#log-list").innerHTML = calls.map((c) =>
      `<li class="${c.ok ? "ok" : "err"}"><code>${esc(c.method)}</code>`
      + `<span class="log-result">${c.ok ? "ok" : esc(c.error || `HTTP ${c.status}`)}</span>`
      + `<time>${new Date(c.at * 1000).toLocaleTimeString()}</time></li>`).join("")
      || '<li class="log-empty">No calls yet.</li>';
  }

  // ---------------------------------------------------------------------------- modal ----

  function renderModal() {
    const root = $("#modal-root");
    const view = S.data.view;
    if (!view) {
      root.innerHTML = "";
      S.modalKey = null;
      return;
    }
    const key = `${view.id}:${view.hash}`;
    if (S.modalKey === key) {
      showErrors({ ...(view.errors || {}), ...S.localErrors });
      return;
    }
    S.modalKey = key;
    S.localErrors = {};
    const p = view.payload;
    const ctx = { mrkdwn: mrkdwnCtx(), surface: "modal", errors: view.errors || {} };
    const closeText = BK.plainText(p.close) || "Cancel";
    const submit = p.submit
      ? `<button type="submit" form="modal-form" class="btn btn-primary modal-submit" data-testid="modal-submit">${esc(BK.plainText(p.submit))}</button>` : "";
    root.innerHTML = `<div class="modal-backdrop" data-view-id="${esc(view.id)}">`
      + `<div class="modal" role="dialog" aria-modal="true" aria-labelledby="modal-title" data-testid="modal">`
      + `<header class="modal-head">${view.depth > 1 ? '<span class="modal-depth" title="Stacked modal">↩</span>' : ""}`
      + `<h2 id="modal-title">${M.plain(BK.plainText(p.title))}</h2>`
      + `<button type="button" class="icon-button modal-x" aria-label="Close">×</button></header>`
      + `<form id="modal-form" class="modal-body" novalidate>${BK.renderBlocks(p.blocks, ctx)}`
      + `<div class="modal-general-error" role="alert" hidden></div></form>`
      + `<footer class="modal-foot"><button type="button" class="btn modal-cancel">${esc(closeText)}</button>${submit}</footer>`
      + `</div></div>`;
    const first = root.querySelector(".bk-input-control, .bk-choices input");
    if (first) first.focus();
  }

  function showErrors(errors) {
    const modal = $(".modal");
    if (!modal) return;
    for (const box of modal.querySelectorAll("[data-input-block]")) {
      const message = errors[box.dataset.inputBlock] || "";
      box.classList.toggle("has-error", Boolean(message));
      box.querySelector(".bk-error").textContent = message;
    }
  }

  function inputValue(box) {
    const control = box.querySelector("[data-kind]");
    if (!control) return null;
    const kind = control.dataset.kind;
    if (kind === "checkboxes") {
      return [...control.querySelectorAll("input:checked")].map((i) => i.value);
    }
    if (kind === "radio_buttons") {
      const picked = control.querySelector("input:checked");
      return picked ? picked.value : null;
    }
    if (kind === "unsupported") return undefined;
    const value = control.value;
    return value === "" ? null : value;
  }

  // A number the client can see is wrong. Shown together with the missing fields, so a form
  // that cannot be sent shows every error at once; a form with nothing missing goes to the bot
  // as typed, and the bot's own validation (response_action: errors) answers it.
  function numberProblem(box, value) {
    const control = box.querySelector('[data-kind="number_input"]');
    if (!control || typeof value !== "string") return null;
    const decimal = control.getAttribute("inputmode") === "decimal";
    const text = value.trim();
    if (!/^-?(\d+\.?\d*|\.\d+)$/.test(text)) return decimal ? "Enter a number." : "Enter a whole number.";
    if (!decimal && !/^-?\d+$/.test(text)) return "Enter a whole number.";
    return null;
  }

  function collectValues() {
    const values = {};
    const missing = {};
    const invalid = {};
    for (const box of document.querySelectorAll(".modal [data-input-block]")) {
      const value = inputValue(box);
      if (value === undefined) continue;
      const empty = value == null || (Array.isArray(value) && value.length === 0)
        || (typeof value === "string" && !value.trim());
      if (empty && box.dataset.optional !== "true") {
        missing[box.dataset.inputBlock] = "Please complete this required field.";
      } else if (!empty && numberProblem(box, value)) {
        invalid[box.dataset.inputBlock] = numberProblem(box, value);
      }
      values[box.dataset.inputBlock] = value;
    }
    return { values, missing, invalid };
  }

  async function submitModal() {
    const backdrop = $(".modal-backdrop");
    if (!backdrop) return;
    const viewId = backdrop.dataset.viewId;
    const { values, missing, invalid } = collectValues();
    if (Object.keys(missing).length) {
      // Slack's client checks required fields before sending anything.
      S.localErrors = { ...invalid, ...missing };
      showErrors(S.localErrors);
      return;
    }
    S.localErrors = {};
    const button = $(".modal-submit");
    setBusy(button, true);
    const general = $(".modal-general-error");
    general.hidden = true;
    const result = await api("/page/api/submit", { view_id: viewId, values });
    setBusy(button, false);
    if (!result.ok || result.error) {
      general.textContent = result.error || "Something went wrong.";
      general.hidden = false;
    } else if (result.response_action === "errors") {
      showErrors(result.errors || {});
    }
    refresh();
  }

  async function closeModal() {
    const backdrop = $(".modal-backdrop");
    if (!backdrop) return;
    const viewId = backdrop.dataset.viewId;
    backdrop.remove(); // Slack closes at once and tells the bot afterwards
    S.modalKey = null;
    await api("/page/api/close", { view_id: viewId });
    refresh();
  }

  // --------------------------------------------------------------------- confirm dialog ----

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const root = $("#dialog-root");
      const style = confirm.style === "danger" ? "btn-danger" : "btn-primary";
      root.innerHTML = `<div class="dialog-backdrop"><div class="dialog" role="alertdialog" aria-modal="true"`
        + ` aria-labelledby="dialog-title" data-testid="confirm-dialog">`
        + `<h3 id="dialog-title">${M.plain(BK.plainText(confirm.title) || "Are you sure?")}</h3>`
        + `<div class="dialog-text">${M.textObject(confirm.text, mrkdwnCtx())}</div>`
        + `<div class="dialog-actions"><button type="button" class="btn dialog-deny">${esc(BK.plainText(confirm.deny) || "Cancel")}</button>`
        + `<button type="button" class="btn ${style} dialog-confirm">${esc(BK.plainText(confirm.confirm) || "Yes")}</button></div>`
        + `</div></div>`;
      const done = (answer) => {
        root.innerHTML = "";
        document.removeEventListener("keydown", onKey, true);
        resolve(answer);
      };
      const onKey = (event) => {
        if (event.key === "Escape") { event.stopPropagation(); done(false); }
      };
      document.addEventListener("keydown", onKey, true);
      root.querySelector(".dialog-deny").onclick = () => done(false);
      root.querySelector(".dialog-confirm").onclick = () => done(true);
      root.querySelector(".dialog-backdrop").onclick = (event) => {
        if (event.target.classList.contains("dialog-backdrop")) done(false);
      };
      root.querySelector(".dialog-confirm").focus();
    });
  }

  // -------------------------------------------------------------------------- actions ----

  function setBusy(button, busy) {
    if (!button) return;
    button.disabled = busy;
    button.classList.toggle("loading", busy);
  }

  function sourceOf(el) {
    const home = el.closest(".home-view");
    if (home) {
      const view = S.data.home;
      return { body: { view_id: home.dataset.viewId }, blocks: view ? view.payload.blocks : [] };
    }
    const modal = el.closest(".modal-backdrop");
    if (modal) {
      const view = S.data.view;
      return { body: { view_id: modal.dataset.viewId }, blocks: view ? view.payload.blocks : [] };
    }
    const msg = el.closest(".msg");
    if (!msg) return null;
    const found = (S.data.messages[msg.dataset.channel] || []).find((m) => m.ts === msg.dataset.ts);
    const blocks = found ? found.blocks : [];
    // The click carries the blocks as shown now: a confirm dialog may stay open while the
    // message changes, and Slack's client still sends what the person saw.
    return { body: { channel: msg.dataset.channel, ts: msg.dataset.ts, shown_blocks: blocks }, blocks };
  }

  async function act(el, value) {
    const source = sourceOf(el);
    if (!source) return;
    const actionId = el.dataset.actionId;
    const blockId = el.dataset.blockId;
    const spec = BK.findElement(source.blocks, blockId, actionId);
    if (spec && spec.confirm && !(await confirmDialog(spec.confirm))) {
      if (el.tagName === "SELECT") el.value = "";
      return;
    }
    if (el.dataset.url) window.open(el.dataset.url, "_blank", "noopener");
    setBusy(el, true);
    const result = await api("/page/api/action", {
      ...source.body, action_id: actionId, block_id: blockId, value,
    });
    setBusy(el, false);
    if (!result.ok || result.error) toast(result.error || "That did not work.", "error");
    refresh();
  }

  async function send(text) {
    const input = $("#composer-input");
    const button = $("#send");
    setBusy(button, true);
    S.stickToBottom = true;
    // Typed before the page's first state arrived: who is acting is not known yet.
    if (!S.data) await refresh();
    const result = await api("/page/api/compose", { channel: S.channel, text });
    setBusy(button, false);
    if (!result.ok) {
      toast(result.error || "Could not send.", "error");
      return;
    }
    input.value = "";
    autosize(input);
    updateHints();
    refresh();
  }

  function toast(message, kind) {
    const box = document.createElement("div");
    box.className = `toast ${kind || ""}`;
    box.setAttribute("role", "status");
    box.textContent = message;
    $("#toasts").appendChild(box);
    setTimeout(() => box.classList.add("gone"), 4500);
    setTimeout(() => box.remove(), 5000);
  }

  // ------------------------------------------------------------------------- composer ----

  function autosize(input) {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }

  function updateHints() {
    const hints = $("#composer-hints");
    const value = $("#composer-input").value;
    if (!S.data || !value.startsWith("/") || value.includes("\n")) {
      hints.hidden = true;
      return;
    }
    const typed = value.trim();
    const commands = (S.data.commands || []).filter((c) =>
      c.command.startsWith(typed.split(" ")[0]));
    const suggestions = (S.data.suggestions || []).filter((s) => s.startsWith(typed) && s !== typed);
    if (!commands.length && !suggestions.length) {
      hints.hidden = true;
      return;
    }
    hints.innerHTML = commands.map((c) =>
      `<div class="hint-command"><b>${esc(c.command)}</b> <span>${esc(c.usage)}</span>`
      + `${c.description ? `<em>${esc(c.description)}</em>` : ""}</div>`).join("")
      + suggestions.map((s) => `<button type="button" class="hint-item" data-suggest="${esc(s)}">${esc(s)}</button>`).join("");
    hints.hidden = false;
  }

  function useSuggestion(text) {
    const input = $("#composer-input");
    input.value = text;
    autosize(input);
    updateHints();
    input.focus();
  }

  // --------------------------------------------------------------------------- events ----

  document.addEventListener("click", (event) => {
    const target = event.target;
    const link = target.closest("a[href]");
    if (link && link.origin === location.origin && link.pathname.startsWith("/archives/")) {
      // A permalink into this sandbox (e.g. "open" in /signoff pending): go there in place.
      const [, , channel, p] = link.pathname.split("/");
      const digits = (p || "").replace(/^p/, "");
      event.preventDefault();
      S.channel = channel;
      S.home = false;
      S.focusTs = digits.length > 6 ? `${digits.slice(0, -6)}.${digits.slice(-6)}` : null;
      render();
      return;
    }
    const button = target.closest("button");
    if (!button) return;
    if (button.classList.contains("bk-button")) {
      event.preventDefault();
      act(button, null);
    } else if (button.id === "open-home") {
      openHome();
    } else if (button.dataset.channel && button.classList.contains("nav-item")) {
      S.home = false;
      S.channel = button.dataset.channel;
      localStorage.setItem("signoff-sandbox-channel", S.channel);
      render();
      $("#composer-input").focus();
    } else if (button.classList.contains("thread-toggle")) {
      const ts = button.closest(".thread").dataset.thread;
      if (S.collapsed.has(ts)) S.collapsed.delete(ts); else S.collapsed.add(ts);
      render();
    } else if (button.classList.contains("dismiss")) {
      const msg = button.closest(".msg");
      api("/page/api/dismiss", { channel: msg.dataset.channel, ts: msg.dataset.ts }).then(refresh);
    } else if (button.dataset.suggest) {
      useSuggestion(button.dataset.suggest);
    } else if (button.classList.contains("modal-cancel") || button.classList.contains("modal-x")) {
      closeModal();
    } else if (button.id === "toggle-log" || button.id === "close-log") {
      const log = $("#log");
      log.hidden = !log.hidden;
      $("#toggle-log").setAttribute("aria-pressed", String(!log.hidden));
      renderLog();
    }
  });

  document.addEventListener("change", (event) => {
    const el = event.target;
    if (el.tagName === "SELECT" && el.dataset.actionId && !el.closest("[data-input-block]")) {
      if (el.value) act(el, el.value);
      return;
    }
    // Radio buttons and checkboxes in a message: each change is a block_actions, as in Slack.
    const group = el.closest(".bk-choices");
    if (group && group.dataset.actionId && !el.closest("[data-input-block]")) {
      const ticked = [...group.querySelectorAll("input:checked")].map((i) => i.value);
      act(group, group.dataset.kind === "checkboxes" ? ticked : (ticked[0] || null));
    }
  });

  document.addEventListener("submit", (event) => {
    if (event.target.id === "modal-form") {
      event.preventDefault();
      submitModal();
    } else if (event.target.id === "composer") {
      event.preventDefault();
      const text = $("#composer-input").value.trim();
      if (text) send(text);
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && $(".modal-backdrop") && !$(".dialog-backdrop")) {
      closeModal();
    }
  });

  const input = $("#composer-input");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const text = input.value.trim();
      if (text) send(text);
    } else if (event.key === "Tab" && !$("#composer-hints").hidden) {
      const first = $("#composer-hints .hint-item");
      if (first) {
        event.preventDefault();
        useSuggestion(first.dataset.suggest);
      }
    }
  });
  input.addEventListener("input", () => { autosize(input); updateHints(); });

  $("#user-picker").addEventListener("change", (event) => {
    S.me = event.target.value;
    localStorage.setItem("signoff-sandbox-user", S.me);
    const url = new URL(location.href);
    url.searchParams.set("as", S.me);
    history.replaceState(null, "", url);
    S.modalKey = null;
    S.seen = {};
    refresh();
  });

  refresh().then(() => (S.home ? openHome() : input.focus()));
  connect();
})();
