// The dashboard page: keeps a copy of the server's state, fed by server-sent events, and
// redraws the KPIs, the Gantt chart, the change list and the machines table from it.
// Text from events is always set through textContent, never parsed as HTML.
"use strict";

(() => {
  const MESSAGES = window.PLANTPULSE_I18N;
  const LANGUAGE_KEY = "plantpulse.dashboard.language";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MAX_CHANGE_ITEMS = 12;
  const JOB_COLOURS = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
    "#9c755f", "#e15759", "#86bcb6", "#8cd17d", "#a0cbe8", "#ff9d9a",
  ];

  const view = {
    machines: new Map(),
    plants: new Map(),
    plantId: null,
    connection: { status: "starting", detail: "" },
    streamLost: false,
    riskThreshold: 30,
    lastUpdate: null,
  };
  let language = initialLanguage();
  let renderPending = false;

  // --- language -------------------------------------------------------------------------

  function supported(tag) {
    if (!tag) return null;
    const primary = tag.toLowerCase().split("-")[0];
    if (primary === "zh") return "zh-CN";
    if (primary === "en") return "en";
    return null;
  }

  function initialLanguage() {
    const saved = window.localStorage.getItem(LANGUAGE_KEY);
    if (saved && MESSAGES[saved]) return saved;
    // The server chose from Accept-Language when the request carried one.
    if (document.documentElement.dataset.languageSource === "header") {
      return supported(document.documentElement.lang) || "en";
    }
    for (const tag of navigator.languages || [navigator.language]) {
      const match = supported(tag);
      if (match) return match;
    }
    return "en";
  }

  function t(key, params) {
    const table = MESSAGES[language] || MESSAGES.en;
    let text = key in table ? table[key] : MESSAGES.en[key];
    if (text === undefined) return key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split(`{${name}}`).join(String(value));
    }
    return text;
  }

  function applyStaticLabels() {
    document.documentElement.lang = language;
    document.title = t("page.title");
    for (const element of document.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    for (const element of document.querySelectorAll("[data-i18n-title]")) {
      element.title = t(element.dataset.i18nTitle);
    }
  }

  function switchLanguage() {
    language = language === "en" ? "zh-CN" : "en";
    window.localStorage.setItem(LANGUAGE_KEY, language);
    applyStaticLabels();
    render();
  }

  // --- formatting ---------------------------------------------------------------------------

  function formatTime(value) {
    const date = value instanceof Date ? value : new Date(value);
    return new Intl.DateTimeFormat(language, {
      timeZone: "UTC", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).format(date);
  }

  function formatClock(date) {
    return new Intl.DateTimeFormat(language, {
      timeZone: "UTC", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).format(date);
  }

  function formatNumber(value, digits = 1) {
    if (value === null || value === undefined) return t("value.none");
    return new Intl.NumberFormat(language, { maximumFractionDigits: digits }).format(value);
  }

  function formatSigned(value, digits = 1) {
    const text = formatNumber(Math.abs(value), digits);
    if (value > 0) return `+${text}`;
    if (value < 0) return `−${text}`;
    return text;
  }

  function formatHours(minutes) {
    return t("unit.hours", { value: formatNumber(minutes / 60) });
  }

  function formatShift(minutes) {
    return t("unit.minutesShift", { value: formatSigned(minutes, 0) });
  }

  function formatPercent(fraction) {
    if (fraction === null || fraction === undefined) return t("value.none");
    return new Intl.NumberFormat(language, { style: "percent", maximumFractionDigits: 1 }).format(fraction);
  }

  function naturalCompare(a, b) {
    return a.localeCompare(b, "en", { numeric: true });
  }

  // --- DOM helpers --------------------------------------------------------------------------

  function element(tag, attributes, parent, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function svgElement(tag, attributes, parent, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  // --- state from the server --------------------------------------------------------------

  function applySnapshot(snapshot) {
    view.machines = new Map(snapshot.machines.map((machine) => [machine.machine_id, machine]));
    view.plants = new Map(snapshot.plants.map((plant) => [plant.plant_id, plant]));
    view.connection = snapshot.connection;
    view.riskThreshold = snapshot.risk_threshold_cycles;
  }

  function applyUpdate(update) {
    if (update.machine_ids) {
      const keep = new Set(update.machine_ids);
      for (const id of [...view.machines.keys()]) if (!keep.has(id)) view.machines.delete(id);
    }
    for (const machine of update.machines || []) view.machines.set(machine.machine_id, machine);
    for (const plant of update.plants || []) view.plants.set(plant.plant_id, plant);
    if (update.connection) view.connection = update.connection;
  }

  function connect() {
    const source = new EventSource("api/events");
    source.addEventListener("snapshot", (event) => {
      applySnapshot(JSON.parse(event.data));
      view.streamLost = false;
      view.lastUpdate = new Date();
      render();
    });
    source.addEventListener("update", (event) => {
      applyUpdate(JSON.parse(event.data));
      view.lastUpdate = new Date();
      render();
    });
    // EventSource reconnects by itself; the next snapshot replaces everything.
    source.addEventListener("error", () => {
      view.streamLost = true;
      render();
    });
  }

  // --- rendering ----------------------------------------------------------------------------

  function render() {
    if (renderPending) return;
    renderPending = true;
    window.requestAnimationFrame(() => {
      renderPending = false;
      renderConnection();
      renderPlantPicker();
      const plant = view.plants.get(view.plantId);
      renderSchedule(plant ? plant.schedule : null, plant ? plant.changes : null);
      renderMachines();
    });
  }

  function renderConnection() {
    const badge = byId("connection");
    const status = view.streamLost ? "lost" : view.connection.status;
    badge.dataset.status = status;
    let text = view.streamLost ? t("connection.streamLost") : t(`connection.${status}`);
    if (!view.streamLost && view.lastUpdate) {
      text += ` · ${t("connection.updated", { time: formatClock(view.lastUpdate) })}`;
    }
    byId("connection-text").textContent = text;
    badge.title = view.connection.detail || "";
  }

  function renderPlantPicker() {
    const ids = [...view.plants.keys()].sort(naturalCompare);
    if (!ids.includes(view.plantId)) view.plantId = ids.length ? ids[0] : null;
    const select = byId("plant-select");
    const current = [...select.options].map((option) => option.value);
    if (current.join("\n") !== ids.join("\n")) {
      select.replaceChildren(...ids.map((id) => element("option", { value: id }, null, id)));
    }
    select.value = view.plantId || "";
    byId("plant-picker").hidden = ids.length < 2;
  }

  function renderSchedule(schedule, changes) {
    byId("schedule-empty").hidden = schedule !== null;
    byId("schedule-body").hidden = schedule === null;
    if (schedule === null) {
      byId("schedule-meta").textContent = "";
      return;
    }

    byId("schedule-meta").textContent = t("schedule.meta", {
      id: schedule.schedule_id,
      created: formatTime(schedule.created),
      plan: schedule.plan_version,
      models: schedule.model_versions.length ? schedule.model_versions.join(", ") : t("value.none"),
    });
    renderKpis(schedule);
    renderGantt(schedule, changes);
    renderChanges(changes);
    renderWindows(schedule);
  }

  function renderKpis(schedule) {
    const kpis = schedule.kpis;
    byId("kpi-makespan").textContent = formatHours(kpis.makespan_minutes);
    byId("kpi-tardiness").textContent = formatHours(kpis.weighted_tardiness_minutes);
    byId("kpi-maintenance-count").textContent = formatNumber(kpis.maintenance_count, 0);
    byId("kpi-maintenance-cost").textContent = formatNumber(kpis.maintenance_cost, 0);
    const status = byId("kpi-solver-status");
    status.textContent = t(`solver.${schedule.solver_status}`);
    status.dataset.status = schedule.solver_status;
    byId("kpi-gap").textContent = formatPercent(schedule.gap);
    byId("kpi-objective").textContent =
      `${formatNumber(schedule.objective)} / ${formatNumber(schedule.bound)}`;
    byId("kpi-solve-time").textContent = t("unit.seconds", { value: formatNumber(schedule.solve_seconds) });
  }

  function changedOperationKeys(changes) {
    const keys = new Set();
    if (!changes) return keys;
    for (const item of changes.operations_moved) keys.add(`${item.job_id}/${item.operation}`);
    for (const item of changes.operations_added) keys.add(`${item.job_id}/${item.operation}`);
    return keys;
  }

  function chooseTickHours(spanHours, plotWidth) {
    const steps = [1, 2, 3, 4, 6, 12, 24, 48, 72, 168, 336, 720];
    const maxTicks = Math.max(2, Math.floor(plotWidth / 90));
    return steps.find((step) => spanHours / step <= maxTicks) || steps[steps.length - 1];
  }

  function renderGantt(schedule, changes) {
    const container = byId("gantt");
    const operations = schedule.operations;
    const windows = schedule.maintenance_windows;
    // Operations starting between `created` and `freeze_until` were kept in place.
    const freezeUntil = schedule.freeze_until ? Date.parse(schedule.freeze_until) : null;
    const created = Date.parse(schedule.created);

    const machines = [...new Set([...operations, ...windows].map((item) => item.machine_id))].sort(naturalCompare);
    const jobs = [...new Set(operations.map((op) => op.job_id))].sort(naturalCompare);
    const changed = changedOperationKeys(changes);

    const times = [created];
    for (const item of [...operations, ...windows]) times.push(Date.parse(item.start), Date.parse(item.end));
    if (freezeUntil !== null) times.push(freezeUntil);
    let start = Math.min(...times);
    let end = Math.max(...times);
    if (end <= start) end = start + 3600e3;
    const padding = (end - start) * 0.015;
    start -= padding;
    end += padding;

    const width = Math.max(640, container.clientWidth);
    const margin = { left: 112, right: 16, top: 34, bottom: 10 };
    const rowHeight = 34;
    const barHeight = 24;
    const plotWidth = width - margin.left - margin.right;
    const height = margin.top + Math.max(1, machines.length) * rowHeight + margin.bottom;
    const x = (time) => margin.left + ((time - start) / (end - start)) * plotWidth;
    const rowY = (machine) => margin.top + machines.indexOf(machine) * rowHeight;

    const svg = svgElement("svg", {
      width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": t("gantt.label"), "data-schedule-id": schedule.schedule_id,
    });
    const defs = svgElement("defs", {}, svg);
    const hatch = svgElement("pattern", {
      id: "maintenance-hatch", width: 8, height: 8, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)",
    }, defs);
    svgElement("rect", { width: 8, height: 8, class: "hatch-background" }, hatch);
    svgElement("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "hatch-line" }, hatch);

    machines.forEach((machine, index) => {
      const y = rowY(machine);
      svgElement("rect", {
        x: margin.left, y, width: plotWidth, height: rowHeight,
        class: index % 2 ? "row row-odd" : "row",
      }, svg);
      svgElement("text", { x: margin.left - 10, y: y + rowHeight / 2, class: "row-label" }, svg, machine);
    });

    const tickHours = chooseTickHours((end - start) / 3600e3, plotWidth);
    const tickStep = tickHours * 3600e3;
    for (let tick = Math.ceil(start / tickStep) * tickStep; tick <= end; tick += tickStep) {
      svgElement("line", { x1: x(tick), x2: x(tick), y1: margin.top - 4, y2: height - margin.bottom, class: "grid" }, svg);
      // A label centred on a tick this close to the right edge would be cut off.
      if (x(tick) + 45 < width) {
        svgElement("text", { x: x(tick), y: margin.top - 10, class: "tick-label" }, svg, formatTime(tick));
      }
    }

    if (freezeUntil !== null && freezeUntil > created) {
      const freeze = svgElement("rect", {
        x: x(created), y: margin.top, width: x(freezeUntil) - x(created),
        height: height - margin.top - margin.bottom, class: "freeze", "data-kind": "freeze",
      }, svg);
      svgElement("title", {}, freeze, t("gantt.frozenUntil", { time: formatTime(freezeUntil) }));
      svgElement("text", { x: x(freezeUntil) - 4, y: height - margin.bottom - 4, class: "freeze-label" }, svg,
        t("gantt.frozenUntil", { time: formatTime(freezeUntil) }));
    }

    for (const op of operations) {
      const left = x(Date.parse(op.start));
      const barWidth = Math.max(2, x(Date.parse(op.end)) - left);
      const y = rowY(op.machine_id) + (rowHeight - barHeight) / 2;
      const key = `${op.job_id}/${op.operation}`;
      const group = svgElement("g", {
        class: changed.has(key) ? "operation changed" : "operation",
        "data-kind": "operation", "data-job": op.job_id, "data-operation": op.operation,
        "data-machine": op.machine_id, "data-start": op.start, "data-end": op.end,
      }, svg);
      svgElement("rect", {
        x: left, y, width: barWidth, height: barHeight, rx: 3,
        fill: JOB_COLOURS[jobs.indexOf(op.job_id) % JOB_COLOURS.length],
      }, group);
      svgElement("title", {}, group, t("gantt.operationTip", {
        job: op.job_id, operation: op.operation, machine: op.machine_id,
        start: formatTime(op.start), end: formatTime(op.end),
      }));
      const label = key;
      if (barWidth > label.length * 6.2 + 6) {
        svgElement("text", { x: left + barWidth / 2, y: y + barHeight / 2, class: "bar-label" }, group, label);
      }
    }

    for (const window of windows) {
      const left = x(Date.parse(window.start));
      const barWidth = Math.max(3, x(Date.parse(window.end)) - left);
      const y = rowY(window.machine_id) + (rowHeight - barHeight) / 2;
      const group = svgElement("g", {
        class: "maintenance", "data-kind": "maintenance", "data-machine": window.machine_id,
        "data-start": window.start, "data-end": window.end, "data-reason": window.reason,
      }, svg);
      svgElement("rect", { x: left, y, width: barWidth, height: barHeight, rx: 3, fill: "url(#maintenance-hatch)" }, group);
      svgElement("title", {}, group, t("gantt.maintenanceTip", {
        machine: window.machine_id, start: formatTime(window.start), end: formatTime(window.end), reason: window.reason,
      }));
      const label = `${t("gantt.maintenance")}: ${window.reason}`;
      const fits = Math.floor((barWidth - 8) / 6.4);
      if (fits >= 4) {
        const text = label.length <= fits ? label : `${label.slice(0, fits - 1)}…`;
        svgElement("text", { x: left + 4, y: y + barHeight / 2, class: "maintenance-label" }, group, text);
      }
    }

    if (created >= start && created <= end) {
      svgElement("line", { x1: x(created), x2: x(created), y1: margin.top - 4, y2: height - margin.bottom, class: "created-line" }, svg);
    }

    container.replaceChildren(svg);
    byId("legend-freeze").hidden = freezeUntil === null;
    byId("legend-changed").hidden = changed.size === 0;
    byId("legend-maintenance").hidden = windows.length === 0;
  }

  function renderChanges(changes) {
    const container = byId("changes");
    container.replaceChildren();
    if (!changes) {
      element("p", { class: "empty" }, container, t("changes.first"));
      return;
    }

    element("p", {}, container, t("changes.operations", {
      id: changes.previous_schedule_id,
      created: formatTime(changes.previous_created),
      moved: changes.operations_moved.length,
      added: changes.operations_added.length,
      removed: changes.operations_removed.length,
      unchanged: changes.operations_unchanged,
    }));
    element("p", {}, container, t("changes.windows", {
      added: changes.windows_added.length,
      removed: changes.windows_removed.length,
      moved: changes.windows_moved.length,
    }));
    const deltas = changes.kpi_deltas;
    element("p", {}, container, t("changes.kpis", {
      makespan: t("unit.hours", { value: formatSigned(deltas.makespan_minutes / 60) }),
      tardiness: t("unit.hours", { value: formatSigned(deltas.weighted_tardiness_minutes / 60) }),
      cost: formatSigned(deltas.maintenance_cost, 0),
      status: t(`solver.${changes.previous_solver_status}`),
    }));

    const items = [
      ...changes.windows_added.map((w) => t("changes.windowAdded", { machine: w.machine_id, start: formatTime(w.start), reason: w.reason })),
      ...changes.windows_removed.map((w) => t("changes.windowRemoved", { machine: w.machine_id, start: formatTime(w.start) })),
      ...changes.windows_moved.map((w) => t("changes.windowMoved", { machine: w.machine_id, shift: formatShift(w.start_shift_minutes) })),
      ...changes.operations_moved.map((op) => t(
        op.from_machine === op.to_machine ? "changes.shifted" : "changes.moved",
        {
          job: op.job_id, operation: op.operation, from: op.from_machine, to: op.to_machine,
          shift: formatShift(op.start_shift_minutes),
        },
      )),
      ...changes.operations_added.map((op) => t("changes.added", {
        job: op.job_id, operation: op.operation, machine: op.machine_id, start: formatTime(op.start),
      })),
      ...changes.operations_removed.map((op) => t("changes.removed", {
        job: op.job_id, operation: op.operation, machine: op.machine_id,
      })),
    ];
    if (!items.length) return;
    const list = element("ul", { class: "change-list" }, container);
    for (const item of items.slice(0, MAX_CHANGE_ITEMS)) element("li", {}, list, item);
    if (items.length > MAX_CHANGE_ITEMS) {
      element("li", { class: "muted" }, list, t("changes.more", { count: items.length - MAX_CHANGE_ITEMS }));
    }
  }

  function renderWindows(schedule) {
    const windows = [...schedule.maintenance_windows].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    const body = byId("windows").querySelector("tbody");
    body.replaceChildren();
    for (const window of windows) {
      const row = element("tr", { "data-machine": window.machine_id }, body);
      element("td", { class: "nowrap" }, row, window.machine_id);
      element("td", { class: "nowrap" }, row, formatTime(window.start));
      element("td", { class: "nowrap" }, row, formatTime(window.end));
      element("td", {}, row, window.reason);
    }
    byId("windows").hidden = windows.length === 0;
    byId("windows-empty").hidden = windows.length > 0;
  }

  function sparkline(history) {
    const width = 140;
    const height = 34;
    const pad = 2;
    const svg = svgElement("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "sparkline" });
    svgElement("title", {}, svg, t("machines.trendTip", { count: history.length }));
    if (history.length < 2) {
      svgElement("circle", { cx: width / 2, cy: height / 2, r: 2.5, class: "spark-p50-dot" }, svg);
      return svg;
    }

    const first = history[0][0];
    const last = history[history.length - 1][0];
    const top = Math.max(view.riskThreshold, ...history.map((point) => point[3])) || 1;
    const x = (time) => pad + ((time - first) / Math.max(1, last - first)) * (width - 2 * pad);
    const y = (rul) => height - pad - (rul / top) * (height - 2 * pad);
    const upper = history.map((point) => `${x(point[0]).toFixed(1)},${y(point[3]).toFixed(1)}`);
    const lower = history.map((point) => `${x(point[0]).toFixed(1)},${y(point[1]).toFixed(1)}`).reverse();
    svgElement("polygon", { points: [...upper, ...lower].join(" "), class: "spark-band" }, svg);
    svgElement("line", { x1: pad, x2: width - pad, y1: y(view.riskThreshold), y2: y(view.riskThreshold), class: "spark-threshold" }, svg);
    svgElement("polyline", {
      points: history.map((point) => `${x(point[0]).toFixed(1)},${y(point[2]).toFixed(1)}`).join(" "),
      class: "spark-p50",
    }, svg);
    return svg;
  }

  function causeCell(row, machine) {
    const cell = element("td", { class: "cause" }, row);
    const cause = (machine.likely_causes || [])[0];
    if (!cause) {
      element("span", { class: "muted" }, cell, t("cause.none"));
      return;
    }
    cell.dataset.component = cause.component;
    cell.dataset.failureMode = cause.failure_mode;
    cell.title = t("cause.tip", { channels: cause.evidence.join(", ") });
    element("div", { class: "cause-name" }, cell, cause.failure_mode);
    element("div", { class: "muted nowrap" }, cell,
      t("cause.detail", { component: cause.component, score: formatPercent(cause.score) }));
  }

  function actionCell(row, machine) {
    const cell = element("td", { class: "action" }, row);
    const action = machine.recommended_action;
    if (!action) {
      element("span", { class: "muted" }, cell, t("action.none"));
      return;
    }
    cell.dataset.action = action.name;
    const tip = [action.description];
    if (action.spare_parts.length) tip.push(t("action.spareParts", { parts: action.spare_parts.join(", ") }));
    cell.title = tip.filter(Boolean).join("\n");
    element("div", { class: "action-name" }, cell, action.name);
    element("div", { class: "muted nowrap" }, cell, t("action.detail", {
      duration: formatHours(action.duration_minutes), crew: action.crew_size, skill: action.skill,
    }));
  }

  function renderMachines() {
    const machines = [...view.machines.values()].sort((a, b) => naturalCompare(a.machine_id, b.machine_id));
    byId("machines-empty").hidden = machines.length > 0;
    byId("machines").hidden = machines.length === 0;
    byId("machines-threshold").textContent = t("machines.threshold", { threshold: formatNumber(view.riskThreshold, 0) });

    const body = byId("machines").querySelector("tbody");
    const rows = machines.map((machine) => {
      const row = element("tr", { "data-machine": machine.machine_id, "data-state": machine.state });
      if (machine.at_risk) row.classList.add("at-risk");
      element("td", { class: "machine-id" }, row, machine.machine_id);
      const stateCell = element("td", {}, row);
      element("span", { class: `badge state-${machine.state}` }, stateCell, t(`state.${machine.state}`));
      const rul = machine.rul;
      element("td", { class: "number nowrap" }, row,
        `${formatNumber(rul.p10, 0)} / ${formatNumber(rul.p50, 0)} / ${formatNumber(rul.p90, 0)}`);
      element("td", {}, row).appendChild(sparkline(machine.history));
      const riskCell = element("td", { class: "nowrap" }, row,
        t("risk.critical", { probability: formatPercent(machine.state_probabilities.critical || 0) }));
      if (machine.at_risk) element("span", { class: "badge risk-flag" }, riskCell, t("risk.atRisk"));
      causeCell(row, machine);
      actionCell(row, machine);
      element("td", {}, row, machine.top_channels.join(", "));
      element("td", { class: "muted" }, row, machine.model_version);
      element("td", { class: "muted nowrap" }, row, formatTime(machine.ts));
      return row;
    });
    body.replaceChildren(...rows);
  }

  // --- start ------------------------------------------------------------------------------

  function start() {
    // A token given in the address is now in a cookie; keep it out of history and screenshots.
    const address = new URL(window.location.href);
    if (address.searchParams.has("token")) {
      address.searchParams.delete("token");
      window.history.replaceState(null, "", address.toString());
    }

    byId("language-toggle").addEventListener("click", switchLanguage);
    byId("plant-select").addEventListener("change", (event) => {
      view.plantId = event.target.value;
      render();
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      window.clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(render, 150);
    });

    applyStaticLabels();
    render();
    connect();
  }

  start();
})();
