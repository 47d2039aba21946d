/* Block Kit -> HTML for messages and modals.
 *
 * Interactive elements carry data-action-id / data-block-id; the page's click and change
 * handlers turn them into block_actions sent (signed) to the bot by the sandbox server.
 */
(function () {
  "use strict";
  const M = window.Mrkdwn;
  const esc = M.escapeHtml;

  function attr(name, value) {
    return value == null ? "" : ` ${name}="${esc(value)}"`;
  }

  function text(obj, ctx) {
    return M.textObject(obj, ctx.mrkdwn);
  }

  function plainText(obj) {
    if (!obj) return "";
    return typeof obj === "string" ? obj : String(obj.text || "");
  }

  // ------------------------------------------------------------------------- elements ----

  function button(el, blockId, ctx) {
    const style = el.style === "primary" || el.style === "danger" ? ` bk-${el.style}` : "";
    return `<button type="button" class="bk-button${style}" data-kind="button"`
      + attr("data-action-id", el.action_id) + attr("data-block-id", blockId)
      + attr("data-url", el.url) + attr("title", el.accessibility_label)
      + `${ctx.readonly ? " disabled" : ""}>${text(el.text, ctx)}</button>`;
  }

  function optionsOf(el) {
    const options = [...(el.options || [])];
    for (const group of el.option_groups || []) options.push(...(group.options || []));
    return options;
  }

  /** What the person picked in a message element (their client's state), if anything. */
  function picked(el, blockId, ctx) {
    const state = ((ctx.picks || {})[blockId] || {})[el.action_id];
    if (!state) return undefined;
    if (state.selected_options) return state.selected_options.map((o) => o.value);
    if ("selected_option" in state) return state.selected_option ? state.selected_option.value : null;
    return undefined;
  }

  function selectElement(el, blockId, ctx, { initial, inModalInput } = {}) {
    const mine = inModalInput ? undefined : picked(el, blockId, ctx);
    const selected = initial !== undefined ? initial : mine !== undefined ? mine
      : (el.initial_option ? el.initial_option.value : null);
    const placeholder = plainText(el.placeholder) || "Select an item";
    const opts = optionsOf(el).map((o) =>
      `<option value="${esc(o.value)}"${o.value === selected ? " selected" : ""}>${esc(plainText(o.text))}</option>`);
    const cls = inModalInput ? "bk-select bk-input-control" : "bk-select";
    return `<select class="${cls}" data-kind="static_select"`
      + attr("data-action-id", el.action_id) + attr("data-block-id", blockId)
      + `${ctx.readonly ? " disabled" : ""}>`
      + `<option value=""${selected == null ? " selected" : ""}>${esc(placeholder)}</option>`
      + `${opts.join("")}</select>`;
  }

  function overflow(el, blockId, ctx) {
    const opts = optionsOf(el).map((o) =>
      `<option value="${esc(o.value)}">${esc(plainText(o.text))}</option>`);
    return `<select class="bk-select bk-overflow" data-kind="overflow" title="More actions"`
      + attr("data-action-id", el.action_id) + attr("data-block-id", blockId)
      + `${ctx.readonly ? " disabled" : ""}><option value="" selected>⋯</option>${opts.join("")}</select>`;
  }

  function image(el) {
    return `<img class="bk-image-el" src="${esc(el.image_url || "")}" alt="${esc(el.alt_text || "")}">`;
  }

  /** Radio buttons or checkboxes; ``chosen``: the values picked. */
  function choices(el, blockId, ctx, chosen) {
    const base = attr("data-action-id", el.action_id) + attr("data-block-id", blockId);
    const kind = el.type === "checkboxes" ? "checkbox" : "radio";
    const name = `${blockId}__${el.action_id}`;
    const items = optionsOf(el).map((o) => `
      <label class="bk-check">
        <input type="${kind}" name="${esc(name)}" value="${esc(o.value)}"${chosen.has(o.value) ? " checked" : ""}${ctx.readonly ? " disabled" : ""}>
        <span><span class="bk-check-text">${text(o.text, ctx)}</span>${o.description ? `<span class="bk-check-desc">${text(o.description, ctx)}</span>` : ""}</span>
      </label>`);
    return `<div class="bk-choices" data-kind="${el.type}"${base}>${items.join("")}</div>`;
  }

  function initialValues(el) {
    return new Set((el.initial_options || (el.initial_option ? [el.initial_option] : []))
      .map((o) => o.value));
  }

  /** An element outside input blocks (actions, section accessory, context). */
  function element(el, blockId, ctx) {
    switch (el.type) {
      case "checkboxes":
      case "radio_buttons": {
        const mine = picked(el, blockId, ctx);
        const chosen = mine === undefined ? initialValues(el)
          : new Set(Array.isArray(mine) ? mine : mine == null ? [] : [mine]);
        return choices(el, blockId, ctx, chosen);
      }
      case "button": return button(el, blockId, ctx);
      case "static_select":
      case "external_select": return selectElement(el, blockId, ctx);
      case "overflow": return overflow(el, blockId, ctx);
      case "image": return image(el);
      case "mrkdwn":
      case "plain_text": return `<span class="bk-ctx-text">${text(el, ctx)}</span>`;
      default:
        return `<span class="bk-unsupported">[${esc(el.type || "element")}]</span>`;
    }
  }

  /** The control of an input block in a modal, named by its block id. */
  function inputControl(el, blockId, ctx) {
    const base = attr("data-action-id", el.action_id) + attr("data-block-id", blockId);
    const placeholder = attr("placeholder", plainText(el.placeholder) || null);
    switch (el.type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input": {
        const max = attr("maxlength", el.max_length);
        const value = el.initial_value || "";
        if (el.multiline) {
          return `<textarea class="bk-input-control" data-kind="${el.type}" rows="4"${base}${placeholder}${max}>${esc(value)}</textarea>`;
        }
        const type = el.type === "email_text_input" ? "email" : el.type === "url_text_input" ? "url" : "text";
        return `<input class="bk-input-control" type="${type}" data-kind="${el.type}"${base}${placeholder}${max} value="${esc(value)}">`;
      }
      case "number_input": {
        // A text box on purpose: what the person types reaches the bot as typed, so the bot's
        // own validation (and its response_action: errors) is what answers a bad number.
        const mode = el.is_decimal_allowed ? "decimal" : "numeric";
        const value = el.initial_value == null ? "" : el.initial_value;
        const hint = el.is_decimal_allowed ? "A number" : "A whole number";
        return `<input class="bk-input-control" type="text" inputmode="${mode}" data-kind="number_input"${base}`
          + `${attr("placeholder", plainText(el.placeholder) || hint)} value="${esc(value)}">`;
      }
      case "static_select":
      case "external_select":
        return selectElement(el, blockId, ctx, { inModalInput: true });
      case "checkboxes":
      case "radio_buttons":
        return choices(el, blockId, ctx, initialValues(el));
      case "datepicker":
        return `<input class="bk-input-control" type="date" data-kind="datepicker"${base} value="${esc(el.initial_date || "")}">`;
      case "timepicker":
        return `<input class="bk-input-control" type="time" data-kind="timepicker"${base} value="${esc(el.initial_time || "")}">`;
      default:
        return `<div class="bk-unsupported" data-kind="unsupported"${base}>[${esc(el.type)} is not supported by the sandbox]</div>`;
    }
  }

  // --------------------------------------------------------------------------- blocks ----

  function section(block, ctx) {
    const parts = [];
    if (block.text) parts.push(`<div class="bk-text">${text(block.text, ctx)}</div>`);
    if (block.fields && block.fields.length) {
      parts.push(`<div class="bk-fields">${block.fields.map((f) =>
        `<div class="bk-field">${text(f, ctx)}</div>`).join("")}</div>`);
    }
    const acc = block.accessory
      ? `<div class="bk-accessory">${element(block.accessory, block.block_id, ctx)}</div>` : "";
    return `<div class="bk-section-main">${parts.join("")}</div>${acc}`;
  }

  function richText(block, ctx) {
    const inline = (els) => (els || []).map((e) => {
      const style = e.style || {};
      let html;
      if (e.type === "text") html = M.plain(e.text, false);
      else if (e.type === "link") html = `<a href="${esc(e.url)}" target="_blank" rel="noopener">${esc(e.text || e.url)}</a>`;
      else if (e.type === "user") html = M.render(`<@${e.user_id}>`, ctx.mrkdwn);
      else if (e.type === "usergroup") html = M.render(`<!subteam^${e.usergroup_id}>`, ctx.mrkdwn);
      else if (e.type === "channel") html = M.render(`<#${e.channel_id}>`, ctx.mrkdwn);
      else if (e.type === "emoji") html = M.emojify(`:${esc(e.name)}:`);
      else if (e.type === "date") html = M.render(`<!date^${e.timestamp}^${e.format}|${e.fallback || ""}>`, ctx.mrkdwn);
      else html = esc(e.text || "");
      if (style.code) html = `<code class="code">${html}</code>`;
      if (style.bold) html = `<b>${html}</b>`;
      if (style.italic) html = `<i>${html}</i>`;
      if (style.strike) html = `<s>${html}</s>`;
      return html;
    }).join("");
    return (block.elements || []).map((part) => {
      if (part.type === "rich_text_preformatted") return `<pre class="pre">${inline(part.elements)}</pre>`;
      if (part.type === "rich_text_quote") return `<span class="quote">${inline(part.elements)}</span>`;
      if (part.type === "rich_text_list") {
        const tag = part.style === "ordered" ? "ol" : "ul";
        return `<${tag} class="bk-list">${(part.elements || []).map((s) => `<li>${inline(s.elements)}</li>`).join("")}</${tag}>`;
      }
      return `<div>${inline(part.elements)}</div>`;
    }).join("");
  }

  function inputBlock(block, ctx) {
    const el = block.element || {};
    const error = (ctx.errors || {})[block.block_id];
    const optional = block.optional ? '<span class="bk-optional">(optional)</span>' : "";
    const id = `in-${block.block_id}`;
    return `<div class="bk-input${error ? " has-error" : ""}" data-input-block="${esc(block.block_id)}"`
      + ` data-optional="${block.optional ? "true" : "false"}">`
      + `<label class="bk-label" for="${esc(id)}">${text(block.label, ctx)} ${optional}</label>`
      + inputControl(el, block.block_id, ctx).replace(/^<(\w+)/, `<$1 id="${esc(id)}"`)
      + (block.hint ? `<div class="bk-hint">${text(block.hint, ctx)}</div>` : "")
      + `<div class="bk-error" role="alert">${error ? esc(error) : ""}</div></div>`;
  }

  function block(b, ctx) {
    const id = attr("data-block-id", b.block_id);
    switch (b.type) {
      case "header":
        return `<div class="bk-block bk-header"${id}>${text(b.text, ctx)}</div>`;
      case "section":
        return `<div class="bk-block bk-section"${id}>${section(b, ctx)}</div>`;
      case "divider":
        return `<hr class="bk-block bk-divider"${id}>`;
      case "context":
        return `<div class="bk-block bk-context"${id}>${(b.elements || []).map((e) =>
          element(e, b.block_id, ctx)).join("")}</div>`;
      case "actions":
        return `<div class="bk-block bk-actions"${id}>${(b.elements || []).map((e) =>
          element(e, b.block_id, ctx)).join("")}</div>`;
      case "image":
        return `<figure class="bk-block bk-image"${id}>${b.title ? `<figcaption>${text(b.title, ctx)}</figcaption>` : ""}`
          + `<img src="${esc(b.image_url || "")}" alt="${esc(b.alt_text || "")}"></figure>`;
      case "input":
        return ctx.surface === "modal" ? inputBlock(b, ctx)
          : `<div class="bk-block bk-unsupported"${id}>[input block]</div>`;
      case "rich_text":
        return `<div class="bk-block bk-rich"${id}>${richText(b, ctx)}</div>`;
      default:
        return `<div class="bk-block bk-unsupported"${id}>[unsupported block: ${esc(b.type)}]</div>`;
    }
  }

  /** blocks -> HTML. ctx: {mrkdwn: mrkdwn ctx, surface: "message"|"modal", errors, readonly}. */
  function renderBlocks(blocks, ctx) {
    return (blocks || []).map((b) => block(b, ctx)).join("");
  }

  /** Find an element by block_id/action_id (the page looks up confirm dialogs this way). */
  function findElement(blocks, blockId, actionId) {
    for (const b of blocks || []) {
      if (blockId && b.block_id !== blockId) continue;
      const candidates = [...(b.elements || [])];
      if (b.accessory) candidates.push(b.accessory);
      if (b.element) candidates.push(b.element);
      for (const el of candidates) if (el && el.action_id === actionId) return el;
    }
    return null;
  }

  window.BlockKit = { renderBlocks, findElement, plainText };
})();
