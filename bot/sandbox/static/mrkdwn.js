/* Slack mrkdwn -> safe HTML.
 *
 * Handles ```pre```, `code`, *bold*, _italic_, ~strike~, > quotes, :emoji:, and the <…> forms:
 * <@U…> mentions, <#C…> channels, <!subteam^S…>, <!here>, <!date^ts^format|fallback>,
 * <url|label> links. Everything the sender wrote is escaped; entities (&amp; &lt; &gt;) are
 * decoded first, exactly once.
 */
(function () {
  "use strict";

  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", no_entry: "⛔",
    no_entry_sign: "🚫", warning: "⚠️", hourglass: "⌛", hourglass_flowing_sand: "⏳",
    double_vertical_bar: "⏸️", arrows_counterclockwise: "🔄", fast_forward: "⏩",
    white_circle: "⚪", large_green_circle: "🟢", red_circle: "🔴", large_blue_circle: "🔵",
    bell: "🔔", rocket: "🚀", tada: "🎉", memo: "📝", lock: "🔒", key: "🔑", eyes: "👀",
    thumbsup: "👍", "+1": "👍", thumbsdown: "👎", "-1": "👎", clock1: "🕐", alarm_clock: "⏰",
    stopwatch: "⏱️", calendar: "📅", information_source: "ℹ️", bulb: "💡", gear: "⚙️",
    robot_face: "🤖", raised_hand: "✋", wave: "👋", speech_balloon: "💬", link: "🔗",
    arrow_right: "➡️", heavy_plus_sign: "➕", heavy_minus_sign: "➖", question: "❓",
    exclamation: "❗", pencil2: "✏️", inbox_tray: "📥", outbox_tray: "📤", package: "📦",
    chart_with_upwards_trend: "📈", bar_chart: "📊", fire: "🔥", boom: "💥", zap: "⚡",
    skull: "💀", sparkles: "✨", star: "⭐", mag: "🔍", repeat: "🔁", stop_sign: "🛑",
    black_square_for_stop: "⏹️", arrow_forward: "▶️", pause_button: "⏸️",
    ballot_box_with_check: "☑️", heavy_multiplication_x: "✖️", slightly_smiling_face: "🙂",
    eye: "👁️",
  };

  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function decodeEntities(text) {
    return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  // The bundled sprite (static/vendor/emoji, installed by bot/sandbox/emoji.py): Slack's
  // short names and unicode emoji drawn as images, so no emoji font is needed.
  const SPRITE = window.SignoffEmoji || null;
  const CELL_PX = 34; // 32 px images with 1 px of padding around each
  const SIZE_EM = 1.25;
  let charPattern = null;

  function spriteRegex() {
    if (!charPattern) {
      const chars = Object.keys(SPRITE.chars).sort((a, b) => b.length - a.length);
      const quoted = chars.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      charPattern = new RegExp(quoted.join("|"), "gu");
    }
    return charPattern;
  }

  function spriteSpan(cell, label) {
    const scale = SIZE_EM / (CELL_PX - 2);
    const size = (SPRITE.cols * CELL_PX * scale).toFixed(4);
    const x = (-(cell[0] * CELL_PX + 1) * scale).toFixed(4);
    const y = (-(cell[1] * CELL_PX + 1) * scale).toFixed(4);
    return `<span class="emoji emoji-img" role="img" aria-label="${label}" title="${label}"`
      + ` style="background-size:${size}em ${size}em;background-position:${x}em ${y}em"></span>`;
  }

  function emojify(escaped) {
    let html = escaped.replace(/:([a-z0-9_+'-]+):/g, (match, name) => {
      if (SPRITE && SPRITE.names[name]) return spriteSpan(SPRITE.names[name], `:${name}:`);
      return EMOJI[name] ? `<span class="emoji" title=":${name}:">${EMOJI[name]}</span>` : match;
    });
    if (SPRITE) html = html.replace(spriteRegex(), (ch) => spriteSpan(SPRITE.chars[ch], ch));
    return html;
  }

  function ordinal(n) {
    const s = ["th", "st", "nd", "rd"], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth()
      && a.getDate() === b.getDate();
  }

  function relativeDay(date) {
    const today = new Date();
    const yesterday = new Date(today); yesterday.setDate(today.getDate() - 1);
    const tomorrow = new Date(today); tomorrow.setDate(today.getDate() + 1);
    if (sameDay(date, today)) return "today";
    if (sameDay(date, yesterday)) return "yesterday";
    if (sameDay(date, tomorrow)) return "tomorrow";
    return null;
  }

  function timeOf(date, seconds) {
    const opts = { hour: "numeric", minute: "2-digit" };
    if (seconds) opts.second = "2-digit";
    return date.toLocaleTimeString([], opts);
  }

  function ago(date) {
    const diff = (Date.now() - date.getTime()) / 1000;
    const future = diff < 0, s = Math.abs(diff);
    const units = [[60, "second", 1], [3600, "minute", 60], [86400, "hour", 3600],
      [2592000, "day", 86400], [31536000, "month", 2592000], [Infinity, "year", 31536000]];
    for (const [limit, unit, size] of units) {
      if (s < limit) {
        const n = Math.max(1, Math.round(s / size));
        const label = `${n} ${unit}${n === 1 ? "" : "s"}`;
        return future ? `in ${label}` : `${label} ago`;
      }
    }
    return "";
  }

  /** Slack's date tokens: {date_num} {date} {date_short} {date_long} {date_pretty}
   *  {date_short_pretty} {date_long_pretty} {time} {time_secs} {ago}. */
  function formatDate(epochSeconds, format) {
    const d = new Date(epochSeconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const date = `${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
    const dateShort = `${MONTHS[d.getMonth()].slice(0, 3)} ${d.getDate()}, ${d.getFullYear()}`;
    const dateLong = `${DAYS[d.getDay()]}, ${date}`;
    const rel = relativeDay(d);
    const tokens = {
      date_num: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
      date, date_short: dateShort, date_long: dateLong,
      date_pretty: rel || date, date_short_pretty: rel || dateShort,
      date_long_pretty: rel || dateLong,
      time: timeOf(d, false), time_secs: timeOf(d, true), ago: ago(d),
    };
    let out = format.replace(/\{([a-z_]+)\}/g, (m, name) => (name in tokens ? tokens[name] : m));
    // Slack capitalises a relative day at the start of the text.
    out = out.replace(/^(today|yesterday|tomorrow)/, (w) => w[0].toUpperCase() + w.slice(1));
    return out;
  }

  function renderSpecial(inner, ctx) {
    const [target, ...rest] = inner.split("|");
    const label = rest.join("|");
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const name = ctx.userName ? ctx.userName(id) : id;
      const me = ctx.me === id ? " mention-me" : "";
      return `<span class="mention${me}" data-user="${escapeHtml(id)}">@${escapeHtml(label || name)}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const name = label || (ctx.channelName ? ctx.channelName(id) : id);
      return `<span class="mention channel-mention">#${escapeHtml(name)}</span>`;
    }
    if (target.startsWith("!subteam^")) {
      const id = target.slice("!subteam^".length);
      const handle = label ? label.replace(/^@/, "") : (ctx.groupHandle ? ctx.groupHandle(id) : id);
      return `<span class="mention">@${escapeHtml(handle)}</span>`;
    }
    if (target.startsWith("!date^")) {
      const parts = target.split("^");
      const epoch = Number(parts[1]);
      const format = parts[2] || "{date}";
      const link = parts[3];
      if (!Number.isFinite(epoch)) return escapeHtml(label || target);
      const text = escapeHtml(formatDate(epoch, format));
      const title = escapeHtml(new Date(epoch * 1000).toString());
      const body = `<time class="slack-date" datetime="${new Date(epoch * 1000).toISOString()}" title="${title}">${text}</time>`;
      return link ? `<a href="${escapeHtml(link)}" target="_blank" rel="noopener">${body}</a>` : body;
    }
    if (target.startsWith("!")) {
      const word = target.slice(1).split("^")[0];
      return `<span class="mention">@${escapeHtml(label || word)}</span>`;
    }
    if (/^(https?:|mailto:)/i.test(target)) {
      return `<a href="${escapeHtml(target)}" target="_blank" rel="noopener">${escapeHtml(label || target)}</a>`;
    }
    return escapeHtml(`<${inner}>`);
  }

  function formatInline(escaped) {
    return escaped
      .replace(/(^|[^\w*])\*(?=\S)([^*\n]*?\S)\*(?=[^\w*]|$)/g, "$1<b>$2</b>")
      .replace(/(^|[^\w_])_(?=\S)([^_\n]*?\S)_(?=[^\w_]|$)/g, "$1<i>$2</i>")
      .replace(/(^|[^\w~])~(?=\S)([^~\n]*?\S)~(?=[^\w~]|$)/g, "$1<s>$2</s>");
  }

  /** mrkdwn text -> HTML. ctx: {userName(id), channelName(id), groupHandle(id), me}. */
  function render(text, ctx) {
    ctx = ctx || {};
    const slots = [];
    const hold = (html) => `\uE000${slots.push(html) - 1}\uE001`;
    let src = String(text == null ? "" : text).replace(/[\u0002\uE000\uE001]/g, "");
    // 1. Preformatted blocks, then inline code: their content is literal.
    src = src.replace(/```\n?([\s\S]*?)```/g, (m, body) =>
      hold(`<pre class="pre">${escapeHtml(decodeEntities(body))}</pre>`));
    src = src.replace(/`([^`\n]+)`/g, (m, body) =>
      hold(`<code class="code">${escapeHtml(decodeEntities(body))}</code>`));
    // 2. The <…> forms (the sender escaped literal angle brackets as &lt; &gt;).
    src = src.replace(/<([^<>\n]+)>/g, (m, inner) => hold(renderSpecial(decodeEntities(inner), ctx)));
    // 3. The rest: escape, then formatting, quotes, emoji, line breaks.
    let html = escapeHtml(decodeEntities(src));
    html = formatInline(html);
    html = html.split("\n").map((line) =>
      line.startsWith("&gt; ") || line === "&gt;"
        ? `<span class="quote">${line.replace(/^&gt; ?/, "")}</span>\u0002` : line).join("\n");
    html = emojify(html);
    // A quote is a block of its own: the line break after it is already there.
    html = html.replace(/\u0002\n/g, "").replace(/\u0002/g, "").replace(/\n/g, "<br>");
    // 4. Put the held pieces back (a held piece never contains a placeholder).
    html = html.replace(/\uE000(\d+)\uE001/g, (m, i) => slots[Number(i)]);
    return html.replace(/<\/pre><br>/g, "</pre>");
  }

  /** plain_text: escaped; emoji shortcodes converted when emoji is not false. */
  function plain(text, emoji) {
    const html = escapeHtml(text == null ? "" : text).replace(/\n/g, "<br>");
    return emoji === false ? html : emojify(html);
  }

  /** A text object ({type: plain_text|mrkdwn, text}) -> HTML. */
  function textObject(obj, ctx) {
    if (!obj) return "";
    if (typeof obj === "string") return render(obj, ctx);
    if (obj.type === "mrkdwn") return render(obj.text, ctx);
    return plain(obj.text, obj.emoji);
  }

  window.Mrkdwn = { render, plain, textObject, escapeHtml, formatDate, emojify };
})();
