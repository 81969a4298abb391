// fulfillkit operator console: plain JavaScript over the JSON API next to it (../api/).
// Every text from the server goes into the page as text (never as HTML).
"use strict";

(function () {
  const API = new URL("../api/", document.baseURI);
  const view = document.getElementById("view");
  const statusRegion = document.getElementById("status");
  let instances = [];
  let me = null;

  // ---- helpers -------------------------------------------------------------------------

  /** Makes an element: h("p", {class: "x"}, "text", child, ...). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (value === true) el.setAttribute(name, "");
      else el.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** Calls the API; a problem answer becomes an Error with `problem` set. */
  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(new URL(path, API), init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const problem = data && typeof data === "object" ? data : { status: response.status, title: response.statusText };
      const error = new Error(problem.detail || problem.title || ("HTTP " + response.status));
      error.problem = problem;
      throw error;
    }
    return data;
  }

  function enc(text) {
    return encodeURIComponent(text);
  }

  function announce(text) {
    statusRegion.textContent = "";
    // A fresh text node makes screen readers read it even when it repeats.
    window.setTimeout(() => { statusRegion.textContent = text; }, 30);
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  /** A problem as a block: title, detail, and its field errors. */
  function problemBlock(error, heading) {
    const problem = error.problem || {};
    const block = h("div", { class: "problem", role: "alert", tabindex: "-1" },
      h("h2", {}, heading || problem.title || "Something went wrong"),
      h("p", {}, error.message));
    if (Array.isArray(problem.errors) && problem.errors.length) {
      block.append(h("ul", {}, problem.errors.map((e) => h("li", {}, e.path + ": " + e.detail))));
    }
    return block;
  }

  /** Replaces the view with `children`, and moves focus to its heading. */
  function show(section, ...children) {
    view.replaceChildren(...children);
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const heading = view.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  function route() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [path, query] = hash.split("?");
    const params = new URLSearchParams(query || "");
    const parts = path.split("/").map(decodeURIComponent);
    return { name: parts[0] || "exceptions", arg: parts[1], params };
  }

  function go(path, params) {
    const query = params && [...params].length ? "?" + params.toString() : "";
    const target = "#/" + path + query;
    if (location.hash === target) render();
    else location.hash = target;
  }

  function instanceOptions(selected, allLabel) {
    const options = [h("option", { value: "" }, allLabel)];
    for (const instance of instances) {
      options.push(h("option", { value: instance.id, selected: instance.id === selected }, instance.label + " (" + instance.id + ")"));
    }
    return options;
  }

  function instanceLabel(id) {
    const instance = instances.find((i) => i.id === id);
    return instance ? instance.label : id;
  }

  function labelled(id, label, control) {
    control.id = id;
    return h("div", {}, h("label", { for: id }, label), control);
  }

  function pager(params, next, path) {
    const nav = h("nav", { class: "pager", "aria-label": "Pages" });
    const trail = (params.get("trail") || "").split(",").filter(Boolean);
    if (params.get("after")) {
      nav.append(h("button", {
        type: "button", class: "secondary", onclick: () => {
          const p = new URLSearchParams(params);
          const previous = trail.pop();
          if (previous && previous !== "-") p.set("after", previous); else p.delete("after");
          if (trail.length) p.set("trail", trail.join(",")); else p.delete("trail");
          go(path, p);
        },
      }, "Previous page"));
    }
    if (next) {
      nav.append(h("button", {
        type: "button", class: "secondary", onclick: () => {
          const p = new URLSearchParams(params);
          p.set("trail", trail.concat([params.get("after") || "-"]).join(","));
          p.set("after", next);
          go(path, p);
        },
      }, "Next page"));
    }
    return nav;
  }

  // ---- exceptions ------------------------------------------------------------------------

  const KEY_FIELDS = { name: "Name", phone: "Phone", address: "Address", cart: "Cart" };
  const ACTIONS = [
    ["accept_provider_version", "Accept the provider's version", "The provider keeps what it has; the edit is not sent."],
    ["reexport", "Re-export the latest version", "Cancel at the provider and export the latest version as a new shipment."],
    ["cancelled_at_provider", "Cancelled at the provider", "You cancelled it at the provider: mark the shipment cancelled."],
    ["manual", "Handled manually", "Handled outside fulfillkit: only close the exception."],
  ];

  async function exceptionsView(params) {
    const status = params.get("status") || "open";
    const query = new URLSearchParams({ status, limit: "25" });
    for (const key of ["instance", "after"]) if (params.get(key)) query.set(key, params.get(key));
    for (const key of ["since", "until"]) {
      if (params.get(key)) query.set(key, new Date(params.get(key) + "T00:00:00").toISOString());
    }
    const heading = h("h1", {}, "Order exceptions");
    const statusSelect = h("select", { name: "status" },
      h("option", { value: "open", selected: status === "open" }, "Open"),
      h("option", { value: "resolved", selected: status === "resolved" }, "Resolved"),
      h("option", { value: "all", selected: status === "all" }, "All"));
    const instanceSelect = h("select", { name: "instance" }, instanceOptions(params.get("instance"), "All instances"));
    const since = h("input", { type: "date", name: "since", value: params.get("since") || "" });
    const until = h("input", { type: "date", name: "until", value: params.get("until") || "" });
    const filters = h("form", {
      class: "filters", role: "search", "aria-label": "Filter exceptions", onsubmit: (event) => {
        event.preventDefault();
        const p = new URLSearchParams();
        p.set("status", statusSelect.value);
        if (instanceSelect.value) p.set("instance", instanceSelect.value);
        if (since.value) p.set("since", since.value);
        if (until.value) p.set("until", until.value);
        go("exceptions", p);
      },
    },
      labelled("f-status", "Status", statusSelect),
      labelled("f-instance", "Instance", instanceSelect),
      labelled("f-since", "Detected from", since),
      labelled("f-until", "Detected before", until),
      h("div", {}, h("button", { type: "submit" }, "Apply filters")));
    let page;
    try {
      page = await api("GET", "exceptions?" + query.toString());
    } catch (error) {
      show("exceptions", heading, filters, problemBlock(error, "The exceptions could not be listed"));
      return;
    }
    const captionText = { open: "Open exceptions", resolved: "Resolved exceptions", all: "All exceptions" }[status] || "Exceptions";
    let body;
    if (!page.items.length) {
      body = h("p", { id: "exceptions-empty" }, "No exceptions match these filters.");
    } else {
      body = h("table", { id: "exceptions-table" },
        h("caption", {}, captionText),
        h("thead", {}, h("tr", {},
          ["Order", "Customer", "Instance", "What changed", "Why", "Detected", "Status"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, page.items.map((e) => h("tr", { "data-order": e.order_id },
          h("th", { scope: "row" }, h("a", { href: "#/exception/" + enc(e.order_id) }, e.order_id)),
          h("td", {}, e.customer),
          h("td", {}, e.instance),
          h("td", {}, e.changed_fields.map((f) => h("span", { class: "tag" }, KEY_FIELDS[f] || f))),
          h("td", {}, e.provider_state ? e.reason.replace(/_/g, " ") + ": " + e.provider_state : e.reason.replace(/_/g, " ")),
          h("td", {}, when(e.detected_at)),
          h("td", {}, e.open ? "Open" : "Resolved (" + e.resolution.action.replace(/_/g, " ") + " by " + e.resolution.by + ")")))));
    }
    show("exceptions", heading, filters, body, pager(params, page.next, "exceptions"));
  }

  async function exceptionView(orderId) {
    const heading = h("h1", {}, "Exception of order " + orderId);
    const back = h("p", {}, h("a", { href: "#/exceptions" }, "Back to the exceptions"));
    let detail;
    try {
      detail = await api("GET", "exceptions/" + enc(orderId));
    } catch (error) {
      show("exceptions", heading, problemBlock(error, "The exception could not be read"), back);
      return;
    }
    const e = detail.exception;
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Instance"), h("dd", {}, e.instance),
      h("dt", {}, "Shipment"), h("dd", {}, e.shipment.provider_ref),
      h("dt", {}, "Why"), h("dd", {}, e.reason.replace(/_/g, " ") + (e.provider_state ? ": " + e.provider_state : "")),
      h("dt", {}, "Delivery status"), h("dd", {}, e.delivery_status ? e.delivery_status.original + " (" + e.delivery_status.code + ")" : "not tracked yet"),
      h("dt", {}, "Detected"), h("dd", {}, when(e.detected_at)),
      h("dt", {}, "Edits since"), h("dd", {}, String((e.later_edits || []).length)),
      h("dt", {}, "Status"), h("dd", { id: "exception-status" }, detail.open ? "Open" :
        "Resolved (" + e.resolution.action.replace(/_/g, " ") + " by " + e.resolution.by + ", " + when(e.resolved_at) + ")" +
        (e.resolution.note ? ": " + e.resolution.note : "")));
    const changes = detail.changes.length
      ? h("table", { id: "changes-table", "aria-labelledby": "changes-heading" },
        h("thead", {}, h("tr", {}, ["Field", "The provider has", "Requested"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, detail.changes.map((c) => h("tr", {},
          h("th", { scope: "row" }, KEY_FIELDS[c.field] || c.field),
          h("td", {}, c.exported),
          h("td", {}, c.requested)))))
      : h("p", {}, "The latest version matches what the provider has.");
    const parts = [heading, facts, h("h2", { id: "changes-heading" }, "What changed"), changes];
    if (detail.open) {
      const note = h("textarea", { id: "resolution-note", name: "note", rows: "3" });
      const result = h("div", {});
      const buttons = ACTIONS.map(([action, label, help]) => h("button", {
        type: "button", "data-action": action, title: help, onclick: async (event) => {
          for (const b of buttons) b.disabled = true;
          result.replaceChildren();
          try {
            await api("POST", "exceptions/" + enc(orderId) + "/resolve", { action, note: note.value || null });
            announce("The exception of order " + orderId + " is resolved (" + label + ").");
            go("exceptions", new URLSearchParams({ status: "open" }));
          } catch (error) {
            result.append(problemBlock(error, "The exception was not resolved"));
            result.querySelector(".problem").focus();
            for (const b of buttons) b.disabled = false;
          }
          event.preventDefault();
        },
      }, label));
      parts.push(h("h2", {}, "Resolve"),
        h("div", { class: "field" }, h("label", { for: "resolution-note" }, "Note (optional)"), note),
        h("ul", { class: "muted" }, ACTIONS.map(([, label, help]) => h("li", {}, label + ": " + help))),
        h("div", { class: "actions", role: "group", "aria-label": "Resolution" }, buttons),
        result);
    }
    parts.push(h("h2", {}, "Both versions"),
      h("details", {}, h("summary", {}, "The order as the provider has it"), h("pre", {}, JSON.stringify(e.exported, null, 2))),
      h("details", {}, h("summary", {}, "The order as the host asked for it"), h("pre", {}, JSON.stringify(e.requested, null, 2))),
      back);
    show("exceptions", ...parts);
  }

  // ---- failed exports ------------------------------------------------------------------

  async function exportsView(params) {
    const flagged = params.get("flagged") || "";
    const query = new URLSearchParams({ limit: "25" });
    if (flagged) query.set("flagged", flagged);
    if (params.get("after")) query.set("after", params.get("after"));
    const heading = h("h1", {}, "Failed exports");
    const which = h("select", { name: "flagged" },
      h("option", { value: "", selected: flagged === "" }, "All failed exports"),
      h("option", { value: "true", selected: flagged === "true" }, "Flagged: waiting for an operator"),
      h("option", { value: "false", selected: flagged === "false" }, "Retried automatically"));
    const filters = h("form", {
      class: "filters", role: "search", "aria-label": "Filter failed exports", onsubmit: (event) => {
        event.preventDefault();
        const p = new URLSearchParams();
        if (which.value) p.set("flagged", which.value);
        go("exports", p);
      },
    }, labelled("f-flagged", "Show", which), h("div", {}, h("button", { type: "submit" }, "Apply")));
    const result = h("div", {});
    const retryAll = h("button", {
      type: "button", class: "secondary", id: "retry-all", onclick: async () => {
        retryAll.disabled = true;
        try {
          const report = await api("POST", "exports/retry", {});
          announce("Retried " + report.attempted + ": " + report.exported + " exported, " + report.failed + " failed again, " + report.skipped + " left to an operator.");
          go("exports", params);
        } catch (error) {
          result.replaceChildren(problemBlock(error, "The retry failed"));
          retryAll.disabled = false;
        }
      },
    }, "Retry every retryable export now");
    let page;
    try {
      page = await api("GET", "exports/failed?" + query.toString());
    } catch (error) {
      show("exports", heading, filters, problemBlock(error, "The failed exports could not be listed"));
      return;
    }
    let body;
    if (!page.items.length) {
      body = h("p", { id: "exports-empty" }, "No failed exports.");
    } else {
      body = h("table", { id: "exports-table" },
        h("caption", {}, "Failed exports"),
        h("thead", {}, h("tr", {}, ["Order", "Customer", "Instance", "What went wrong", "Attempts", "Since", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, page.items.map((f) => exportRow(f, result, params))));
    }
    show("exports", heading, filters, h("div", { class: "actions" }, retryAll), result, body, pager(params, page.next, "exports"));
  }

  function exportRow(f, result, params) {
    const ref = h("input", { type: "text", name: "provider_ref", autocomplete: "off" });
    const refId = "ref-" + f.order_id.replace(/[^A-Za-z0-9_-]/g, "_");
    const attach = h("form", {
      class: "inline-form", onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api("POST", "exports/" + enc(f.order_id) + "/attach", { provider_ref: ref.value });
          announce("Order " + f.order_id + " is attached to " + ref.value + ".");
          go("exports", params);
        } catch (error) {
          result.replaceChildren(problemBlock(error, "Order " + f.order_id + " was not attached"));
          result.querySelector(".problem").focus();
        }
      },
    }, labelled(refId, "Provider reference for " + f.order_id, ref), h("div", {}, h("button", { type: "submit", class: "secondary" }, "Attach")));
    const retry = h("button", {
      type: "button", onclick: async () => {
        retry.disabled = true;
        try {
          const order = await api("POST", "exports/" + enc(f.order_id) + "/retry", {});
          announce("Order " + f.order_id + ": " + order.export_state + ".");
          go("exports", params);
        } catch (error) {
          result.replaceChildren(problemBlock(error, "Order " + f.order_id + " failed again"));
          result.querySelector(".problem").focus();
          retry.disabled = false;
        }
      },
    }, "Retry " + f.order_id);
    const failure = f.failure;
    return h("tr", { "data-order": f.order_id },
      h("th", { scope: "row" }, f.order_id, f.flagged ? h("span", { class: "tag" }, "flagged") : null),
      h("td", {}, f.customer),
      h("td", {}, f.instance),
      h("td", {}, failure.message, h("br"), h("span", { class: "muted" },
        failure.kind + (failure.http_status ? ", HTTP " + failure.http_status : "") + (failure.endpoint ? ", " + failure.endpoint : ""))),
      h("td", {}, String(f.attempts)),
      h("td", {}, when(f.since)),
      h("td", {}, h("div", { class: "actions" }, retry), f.flagged ? attach : null));
  }

  // ---- the order card --------------------------------------------------------------------

  async function cardView(params) {
    const orderId = params.get("order") || "";
    const heading = h("h1", {}, "Order card (demo)");
    const input = h("input", { type: "text", name: "order", value: orderId, autocomplete: "off" });
    const picker = h("form", {
      class: "inline-form", role: "search", "aria-label": "Open an order", onsubmit: (event) => {
        event.preventDefault();
        go("card", new URLSearchParams(input.value ? { order: input.value.trim() } : {}));
      },
    }, labelled("card-order", "Order id", input), h("div", {}, h("button", { type: "submit" }, "Open")));
    const intro = h("p", { class: "muted" }, "The pieces a host puts into its own order card: the provider's waybill form, the address directory and the stock as your role sees it.");
    if (!orderId) {
      show("card", heading, intro, picker);
      return;
    }
    let order;
    try {
      order = await api("GET", "orders/" + enc(orderId));
    } catch (error) {
      show("card", heading, intro, picker, problemBlock(error, "Order " + orderId + " could not be opened"));
      return;
    }
    const o = order.order;
    const summary = h("dl", { class: "facts", id: "order-summary" },
      h("dt", {}, "Customer"), h("dd", {}, o.customer.name + ", " + o.customer.phone),
      h("dt", {}, "Address"), h("dd", {}, [...o.address.lines, o.address.postcode + " " + o.address.city, o.address.country].join(", ")),
      h("dt", {}, "Instance"), h("dd", {}, instanceLabel(order.instance) + " (" + order.instance + ")"),
      h("dt", {}, "Export"), h("dd", {}, order.export_state + (order.export.shipment ? " as " + order.export.shipment.provider_ref : "")),
      h("dt", {}, "Delivery status"), h("dd", {}, order.current_status ? order.current_status.original + " (" + order.current_status.code + ")" : "none yet"),
      h("dt", {}, "Automation"), h("dd", {}, order.automation));
    const waybillSection = h("section", { "aria-labelledby": "waybill-heading" }, h("h2", { id: "waybill-heading" }, "Waybill"));
    const addressSection = h("section", { "aria-labelledby": "address-heading" }, h("h2", { id: "address-heading" }, "Address from the directory"));
    const stockSection = h("section", { "aria-labelledby": "stock-heading" }, h("h2", { id: "stock-heading" }, "Stock"));
    show("card", heading, picker, h("h2", {}, "Order " + orderId), summary, waybillSection, addressSection, stockSection);
    await Promise.all([
      renderWaybill(waybillSection, orderId, params.get("instance") || order.instance),
      renderAddressSearch(addressSection, order),
      renderStock(stockSection, orderId),
    ]);
  }

  /** Renders the waybill form from the JSON Schema the API gives, and saves it. */
  async function renderWaybill(section, orderId, instanceId) {
    const body = h("div", {});
    section.append(body);
    let form;
    try {
      form = await api("GET", "orders/" + enc(orderId) + "/waybill?instance=" + enc(instanceId));
    } catch (error) {
      body.append(problemBlock(error, "The waybill form could not be read"));
      return;
    }
    const schema = form.schema;
    const order = (form.ui_schema && form.ui_schema["ui:order"]) || Object.keys(schema.properties || {});
    const required = new Set(schema.required || []);
    const fields = order.map((key, i) => fieldFor(key, schema.properties[key], required.has(key), form.values[key], "wb-" + i));
    const summary = h("div", {});
    const save = h("button", { type: "submit", id: "waybill-save" }, "Save waybill");
    const el = h("form", {
      id: "waybill-form", novalidate: true, "aria-describedby": "waybill-help", onsubmit: async (event) => {
        event.preventDefault();
        save.disabled = true;
        statusRegion.textContent = "";
        summary.replaceChildren();
        for (const f of fields) f.setError(null);
        const values = {};
        for (const f of fields) values[f.key] = f.read();
        try {
          await api("PUT", "orders/" + enc(orderId) + "/waybill", { instance: form.instance, values });
          announce("The waybill of order " + orderId + " is saved.");
        } catch (error) {
          const problem = error.problem || {};
          for (const e of problem.errors || []) {
            const field = fields.find((f) => "values." + f.key === e.path);
            if (field) field.setError(e.detail);
          }
          const list = (problem.errors || []).map((e) => {
            const field = fields.find((f) => "values." + f.key === e.path);
            return h("li", {}, field ? h("a", { href: "#" + field.id, onclick: (ev) => { ev.preventDefault(); field.focus(); } }, field.label + ": " + e.detail) : e.path + ": " + e.detail);
          });
          const box = h("div", { class: "problem", role: "alert", tabindex: "-1", id: "waybill-errors" },
            h("h2", {}, problem.errors && problem.errors.length ? "Please correct the waybill" : "The waybill was not saved"),
            list.length ? h("ul", {}, list) : h("p", {}, error.message));
          summary.append(box);
          box.focus();
        } finally {
          save.disabled = false;
        }
      },
    },
      h("p", { id: "waybill-help", class: "muted" }, "The fields the provider of " + instanceLabel(form.instance) + " asks for. Empty fields take the instance's defaults."),
      summary,
      fields.map((f) => f.element),
      h("div", { class: "actions" }, save));
    body.append(el);
  }

  /** One form control for one schema property, with its label, hint and error slot. */
  function fieldFor(key, prop, required, value, id) {
    prop = prop || {};
    const types = Array.isArray(prop.type) ? prop.type : [prop.type];
    const base = types.find((t) => t !== "null") || "string";
    const label = (prop.title || key) + (required ? " (required)" : "");
    const current = value !== undefined && value !== null ? value : (prop.default !== undefined ? prop.default : null);
    const hints = [];
    if (prop.description) hints.push(prop.description);
    if (prop.maxLength !== undefined) hints.push("At most " + prop.maxLength + " characters.");
    if (base === "integer") hints.push("A whole number" + (prop.minimum !== undefined && Math.abs(prop.minimum) < 1e15 ? " from " + prop.minimum + " to " + prop.maximum : "") + ".");
    if (base === "string" && prop.pattern && prop.pattern.indexOf("\\.[0-9]") >= 0) hints.push("A decimal number with a point, such as 12.50.");
    const hintId = id + "-hint";
    const errorId = id + "-error";
    const error = h("p", { class: "field-error", id: errorId, "data-error-for": key, hidden: true });
    const hint = hints.length ? h("p", { class: "hint", id: hintId }, hints.join(" ")) : null;
    const describedBy = [hint ? hintId : null].filter(Boolean);
    let control;
    let read;
    let element;

    if (base === "object") {
      const from = h("input", { type: "time", id: id + "-from", name: key + ".from", value: current && current.from ? current.from : "" });
      const to = h("input", { type: "time", id: id + "-to", name: key + ".to", value: current && current.to ? current.to : "" });
      element = h("fieldset", { class: "field", "aria-describedby": describedBy.concat([errorId]).join(" ") },
        h("legend", {}, label), hint,
        h("div", { class: "window" },
          h("div", {}, h("label", { for: id + "-from" }, "From"), from),
          h("div", {}, h("label", { for: id + "-to" }, "To"), to)),
        error);
      read = () => (!from.value && !to.value ? null : { from: from.value, to: to.value });
      return {
        key, id: id + "-from", label: prop.title || key, element, read,
        focus: () => from.focus(),
        setError: (text) => {
          setErrorText(text);
          for (const c of [from, to]) {
            if (text) c.setAttribute("aria-invalid", "true"); else c.removeAttribute("aria-invalid");
          }
        },
      };
    }

    if (Array.isArray(prop.oneOf)) {
      control = h("select", { name: key });
      const hasNull = prop.oneOf.some((o) => o.const === null);
      if (!hasNull && (current === null || current === undefined)) control.append(h("option", { value: "" }, "Choose…"));
      for (const option of prop.oneOf) {
        const optionValue = option.const === null ? "" : String(option.const);
        control.append(h("option", { value: optionValue, selected: current !== null && String(current) === optionValue }, option.title || optionValue || "—"));
      }
      read = () => (control.value === "" ? null : control.value);
    } else if (base === "boolean" && required) {
      control = h("input", { type: "checkbox", name: key, checked: current === true });
      read = () => control.checked;
    } else if (base === "boolean") {
      control = h("select", { name: key },
        h("option", { value: "", selected: current === null }, "—"),
        h("option", { value: "true", selected: current === true }, "Yes"),
        h("option", { value: "false", selected: current === false }, "No"));
      read = () => (control.value === "" ? null : control.value === "true");
    } else if (base === "integer") {
      control = h("input", { type: "text", inputmode: "numeric", name: key, value: current === null ? "" : String(current), autocomplete: "off" });
      read = () => {
        const text = control.value.trim();
        if (text === "") return null;
        // A whole number goes as a number; anything else as typed, for the server to name.
        return /^-?[0-9]+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : text;
      };
    } else if (base === "string" && prop.format === "date") {
      control = h("input", { type: "date", name: key, value: current || "" });
      read = () => (control.value === "" ? null : control.value);
    } else if (base === "string" && (prop.maxLength || 0) > 200) {
      control = h("textarea", { name: key, rows: "3" });
      control.value = current === null ? "" : String(current);
      read = () => (control.value === "" ? null : control.value);
    } else {
      control = h("input", { type: "text", name: key, value: current === null ? "" : String(current), autocomplete: "off" });
      read = () => (control.value === "" ? null : control.value);
    }
    control.id = id;
    if (required) control.setAttribute("aria-required", "true");
    control.setAttribute("aria-describedby", describedBy.concat([errorId]).join(" "));
    if (control.type === "checkbox") {
      element = h("div", { class: "field" }, h("div", { class: "check" }, control, h("label", { for: id }, label)), hint, error);
    } else {
      element = h("div", { class: "field" }, h("label", { for: id }, label), hint, control, error);
    }
    return {
      key, id, label: prop.title || key, element, read,
      focus: () => control.focus(),
      setError: (text) => {
        setErrorText(text);
        if (text) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
      },
    };

    function setErrorText(text) {
      error.textContent = text || "";
      error.hidden = !text;
    }
  }

  /** The directory search: an ARIA combobox with a listbox of entries. */
  async function renderAddressSearch(section, order) {
    const instance = instances.find((i) => i.id === order.instance);
    if (instance && !instance.capabilities.address_directory) {
      section.append(h("p", { class: "muted" }, instance.label + " has no address directory."));
      return;
    }
    const address = order.order.address;
    const country = h("input", { type: "text", name: "country", value: address.country, size: "3", autocomplete: "off" });
    const pickup = h("input", { type: "checkbox", id: "addr-pickup", name: "pickup_points_only" });
    const list = h("ul", { id: "addr-list", role: "listbox", "aria-label": "Directory entries", hidden: true });
    const input = h("input", {
      type: "text", id: "addr-q", role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
      "aria-controls": "addr-list", autocomplete: "off", "aria-describedby": "addr-hint",
    });
    const chosen = h("div", { id: "addr-chosen", "aria-live": "polite" });
    let entries = [];
    let active = -1;
    let timer = null;
    let asked = 0;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      active = index;
      [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
      if (index >= 0 && list.children[index]) {
        input.setAttribute("aria-activedescendant", list.children[index].id);
        list.children[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      const entry = entries[index];
      if (!entry) return;
      input.value = entry.label;
      close();
      const a = entry.order_address;
      chosen.replaceChildren(h("p", {}, "Chosen: " + entry.label + " (" + entry.kind.replace(/_/g, " ") + "), " +
        [...a.lines, a.postcode + " " + a.city].join(", ") + ". The host stores this address on the order."));
    }

    async function search() {
      const text = input.value.trim();
      if (text.length < 2) { close(); return; }
      const ticket = ++asked;
      const query = new URLSearchParams({ country: country.value.trim(), text, limit: "10" });
      if (pickup.checked) query.set("pickup_points_only", "true");
      try {
        const found = await api("GET", "instances/" + enc(order.instance) + "/addresses?" + query.toString());
        if (ticket !== asked) return;
        entries = found.items;
        list.replaceChildren(...entries.map((entry, i) => h("li", {
          role: "option", id: "addr-opt-" + i, "aria-selected": "false",
          onmousedown: (event) => { event.preventDefault(); choose(i); },
        }, entry.label + " — " + [...entry.address.lines, entry.address.postcode + " " + entry.address.city].join(", "))));
        list.hidden = entries.length === 0;
        input.setAttribute("aria-expanded", String(entries.length > 0));
        highlight(-1);
        announce(entries.length === 1 ? "1 directory entry found." : (entries.length || "No") + " directory entries found.");
      } catch (error) {
        if (ticket !== asked) return;
        close();
        chosen.replaceChildren(problemBlock(error, "The directory could not be searched"));
      }
    }

    input.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(search, 200);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (list.hidden && entries.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
        highlight(Math.min(active + 1, entries.length - 1));
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight(Math.max(active - 1, 0));
      } else if (event.key === "Enter") {
        if (!list.hidden && active >= 0) { event.preventDefault(); choose(active); }
      } else if (event.key === "Escape") {
        close();
      }
    });
    input.addEventListener("blur", () => window.setTimeout(close, 150));

    section.append(
      h("div", { class: "inline-form" },
        labelled("addr-country", "Country", country),
        h("div", { class: "check" }, pickup, h("label", { for: "addr-pickup" }, "Pickup points and lockers only"))),
      h("div", { class: "field" },
        h("label", { for: "addr-q" }, "Search the directory of " + (instance ? instance.label : order.instance)),
        h("p", { class: "hint", id: "addr-hint" }, "Type a street, city, postcode or point code; choose with the arrow keys and Enter."),
        h("div", { class: "combobox" }, input, list)),
      chosen);
  }

  const LEVELS = { out_of_stock: "Out of stock", few: "Few left", in_stock: "In stock", many: "Plenty" };

  function stockText(stock) {
    if (stock === null || stock === undefined) return "Not reported at this instance";
    if (stock === "hidden") return "Not shown for your role";
    if (stock.level) return LEVELS[stock.level] || stock.level;
    if (stock.exact) return stock.exact.available + " available";
    return JSON.stringify(stock);
  }

  async function renderStock(section, orderId) {
    try {
      const stock = await api("GET", "orders/" + enc(orderId) + "/stock");
      section.append(h("table", { id: "stock-table" },
        h("caption", {}, "Stock at " + stock.instance + " as the role " + stock.role + " sees it (" + stock.view + ")"),
        h("thead", {}, h("tr", {}, ["Line", "SKU", "Quantity", "Stock"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, stock.lines.map((l) => h("tr", { "data-sku": l.sku },
          h("td", {}, String(l.line + 1)),
          h("th", { scope: "row" }, l.sku),
          h("td", {}, String(l.quantity)),
          h("td", {}, stockText(l.stock)))))));
    } catch (error) {
      section.append(problemBlock(error, "The stock could not be read"));
    }
  }

  // ---- start -----------------------------------------------------------------------------

  async function render() {
    const r = route();
    try {
      if (r.name === "exception" && r.arg) await exceptionView(r.arg);
      else if (r.name === "exports") await exportsView(r.params);
      else if (r.name === "card") await cardView(r.params);
      else await exceptionsView(r.params);
    } catch (error) {
      view.replaceChildren(problemBlock(error));
    }
    document.body.dataset.ready = r.name;
  }

  async function start() {
    try {
      me = await api("GET", "me");
      document.getElementById("caller").textContent = "Signed in as " + me.operator + " (" + me.role + ")";
      instances = (await api("GET", "instances")).items;
    } catch (error) {
      view.replaceChildren(problemBlock(error, "The console cannot reach its API"));
      return;
    }
    window.addEventListener("hashchange", render);
    await render();
  }

  start();
})();
