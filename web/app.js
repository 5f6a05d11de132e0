// The gradeq dashboard: plain JavaScript over the API of docs/web-api.md.
//
// Every value that comes from the server is put into the page with
// textContent or as an attribute value, never parsed as HTML: course ids
// and error texts are not trusted. The server sends a Content-Security-Policy
// of default-src 'self', so this file holds all the script there is.
"use strict";

(function () {
  const POLL_MS = 5000; // while the event stream is down
  const IDLE_REFRESH_MS = 15000; // rates and ages move even without events
  const MIN_REFRESH_GAP_MS = 500; // at most twice a second
  const JOB_PAGE = 100;

  const S = {
    session: null, // {user, role, csrf_token}
    status: null, // the last /api/status document
    states: null, // /api/states
    route: { view: "runs", arg: "" },
    es: null,
    live: false,
    pollTimer: null,
    refreshTimer: null,
    lastRefresh: 0,
    refreshing: false,
    refreshAgain: false,
    // per-view UI state that survives re-renders
    jobFilter: { state: "", course: "", offset: 0 },
    openJobs: new Set(),
    deadFilter: { release: "", course: "", reason: "", limit: "100" },
    replay: { limit: "", rate: "", to_release: "" },
    lastAction: null, // {ok, text}
    outputs: { course: "" }, // the Outputs view's course
    outputEvents: [], // the latest output.<id>.ready/failed events, newest first
    // renders overlap (each awaits the API): one that started before a
    // newer one was drawn is dropped, so an old read never undoes a click
    renderStarted: 0,
    renderDrawn: 0,
  };

  // --- DOM helpers: text only ---------------------------------------------

  const $ = (id) => document.getElementById(id);

  // h("td", {class: "x", data: {field: "n"}}, child, "text", ...)
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "data") {
        for (const [dk, dv] of Object.entries(v)) {
          if (dv !== undefined && dv !== null) e.dataset[dk] = String(dv);
        }
      } else if (k === "on") {
        for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      } else if (k === "text") {
        e.textContent = String(v);
      } else if (v === true) {
        e.setAttribute(k, "");
      } else {
        e.setAttribute(k, String(v));
      }
    }
  }
  function append(e, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false) continue;
      e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
  }
  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  // --- formatting ------------------------------------------------------------

  const nf = new Intl.NumberFormat("en-US");
  function num(n) {
    return n === null || n === undefined ? "–" : nf.format(n);
  }
  function rate(x) {
    if (x === null || x === undefined) return "–";
    return x >= 100 ? nf.format(Math.round(x)) : (Math.round(x * 10) / 10).toFixed(1);
  }
  function dur(sec) {
    if (sec === null || sec === undefined) return "–";
    sec = Math.round(sec);
    if (sec < 60) return sec + " s";
    if (sec < 3600) return Math.floor(sec / 60) + " min" + (sec % 60 ? " " + (sec % 60) + " s" : "");
    return Math.floor(sec / 3600) + " h " + Math.floor((sec % 3600) / 60) + " min";
  }
  function ms(v) {
    return v === null || v === undefined ? "–" : nf.format(Math.round(v)) + " ms";
  }
  function when(t) {
    if (!t) return "–";
    const d = new Date(t);
    if (isNaN(d)) return String(t);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function ago(t) {
    if (!t) return "";
    const s = (Date.now() - new Date(t).getTime()) / 1000;
    return isNaN(s) ? "" : dur(Math.max(0, s)) + " ago";
  }
  function shortId(id) {
    return id ? String(id).slice(0, 8) : "–";
  }
  function pct(part, total) {
    if (!total) return 0;
    return Math.max(0, Math.min(100, (100 * part) / total));
  }

  // a number cell: the raw value in data-value, formatted text shown
  function numCell(field, v, extra) {
    return h("td", { class: "num", data: { field, value: v === null || v === undefined ? "" : v } }, extra || num(v));
  }
  function badge(state) {
    return h("span", { class: "badge state-" + String(state).replace(/[^a-z_]/g, ""), data: { state } }, state);
  }
  function progressBar(done, total, state) {
    const p = pct(done, total);
    const bar = h("div", { class: "bar-fill state-" + String(state || "").replace(/[^a-z_]/g, "") });
    bar.style.width = p.toFixed(1) + "%"; // CSSOM, allowed by the CSP
    return h(
      "div",
      { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.floor(p), data: { field: "progress", value: p.toFixed(1) } },
      bar,
      h("span", { class: "bar-label" }, p.toFixed(1) + " %")
    );
  }

  // --- the API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || "GET", credentials: "same-origin", headers: {} };
    if (opts.form) {
      init.body = new URLSearchParams(opts.form);
    } else if (opts.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    }
    if (init.method !== "GET" && S.session && !opts.form) {
      init.headers["X-CSRF-Token"] = S.session.csrf_token;
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "cannot reach gradeq-web: " + e.message);
    }
    if (opts.raw && r.ok) return r;
    let body = null;
    const text = await r.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch (e) {
      body = null;
    }
    if (!r.ok) {
      const msg = body && typeof body.error === "string" ? body.error : r.status + " " + r.statusText;
      if (r.status === 401 && !opts.login) loggedOut("Your session has ended: log in again.");
      throw new ApiError(r.status, msg, r.headers.get("Retry-After"));
    }
    return body;
  }

  // --- session -------------------------------------------------------------------

  function isOperator() {
    return !!S.session && S.session.role === "operator";
  }

  async function boot() {
    $("login-form").addEventListener("submit", onLogin);
    $("view").addEventListener("pointerdown", () => {
      S.pointerDown = true;
    });
    window.addEventListener("pointerup", () => {
      S.pointerDown = false;
      if (S.pendingRender) {
        S.pendingRender = false;
        setTimeout(() => render(false), 0); // after the click event
      }
    });
    $("logout").addEventListener("click", onLogout);
    window.addEventListener("hashchange", () => {
      parseRoute();
      render(true);
    });
    try {
      S.session = await api("/api/session", { login: true });
    } catch (e) {
      S.session = null;
    }
    if (S.session) start();
    else showLogin("");
  }

  function showLogin(msg) {
    stopLive();
    S.session = null;
    document.body.dataset.role = "";
    $("login-view").hidden = false;
    $("nav").hidden = true;
    $("who").hidden = true;
    $("logout").hidden = true;
    clear($("view"));
    $("login-error").textContent = msg || "";
    setLive("off");
    $("login-user").focus();
  }

  function loggedOut(msg) {
    if (S.session) showLogin(msg);
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const user = $("login-user").value;
    const password = $("login-password").value;
    $("login-submit").disabled = true;
    $("login-error").textContent = "";
    try {
      S.session = await api("/api/login", { method: "POST", form: { user, password }, login: true });
      $("login-password").value = "";
      start();
    } catch (e) {
      let msg = e.status === 401 ? "Wrong user or password." : e.message;
      if (e.status === 429) msg = "Too many attempts" + (e.retryAfter ? ": try again in " + e.retryAfter + " s." : ".");
      $("login-error").textContent = msg;
    } finally {
      $("login-submit").disabled = false;
    }
  }

  async function onLogout() {
    try {
      await api("/api/logout", { method: "POST", json: { confirm: true } });
    } catch (e) {
      /* the session is gone either way */
    }
    showLogin("Logged out.");
  }

  function start() {
    $("login-view").hidden = true;
    $("nav").hidden = false;
    $("who").hidden = false;
    $("logout").hidden = false;
    $("who-user").textContent = S.session.user;
    $("who-role").textContent = S.session.role;
    document.body.dataset.role = S.session.role;
    if (!location.hash) history.replaceState(null, "", "#/runs");
    parseRoute();
    startLive();
    refresh();
  }

  // --- routing ---------------------------------------------------------------------

  function parseRoute() {
    const m = /^#\/([a-z]+)(?:\/(.*))?$/.exec(location.hash || "");
    const view = m ? m[1] : "runs";
    const arg = m && m[2] ? decodeURIComponent(m[2]) : "";
    const known = ["runs", "run", "releases", "consumers", "dead", "outputs"];
    const next = { view: known.includes(view) ? view : "runs", arg };
    if (next.view !== S.route.view || next.arg !== S.route.arg) {
      if (next.view === "run") {
        S.jobFilter = { state: "", course: "", offset: 0 };
        S.openJobs = new Set();
      }
      S.lastAction = null;
    }
    S.route = next;
    for (const a of document.querySelectorAll("#nav a")) {
      const v = a.dataset.view;
      a.classList.toggle("active", v === S.route.view || (v === "runs" && S.route.view === "run"));
    }
  }

  // --- live updates --------------------------------------------------------------------

  function setLive(mode) {
    const e = $("live");
    e.dataset.live = mode;
    e.textContent = mode === "live" ? "live" : mode === "polling" ? "polling" : "offline";
    e.title =
      mode === "live"
        ? "Updated as events arrive from gradeq-web"
        : mode === "polling"
          ? "The event stream is down: the page re-reads every 5 s"
          : "Not connected";
  }

  function startLive() {
    if (S.es) S.es.close();
    S.es = null;
    setLive("polling");
    startPolling();
    if (!window.EventSource) return;
    const es = new EventSource("/api/events");
    S.es = es;
    es.addEventListener("open", () => {
      if (S.es !== es) return;
      setLive("live");
      startPolling(); // the slow refresh of the live mode
      scheduleRefresh();
    });
    es.addEventListener("gradeq", (ev) => {
      if (S.es !== es) return;
      noteOutputEvent(ev.data);
      scheduleRefresh();
    });
    es.addEventListener("error", () => {
      if (S.es !== es) return;
      setLive("polling");
      startPolling();
      if (es.readyState === EventSource.CLOSED) {
        // the browser gave up (an HTTP error): try again later ourselves
        S.es = null;
        setTimeout(() => {
          if (S.session && !S.es) startLive();
        }, POLL_MS);
      }
    });
  }

  function stopLive() {
    if (S.es) S.es.close();
    S.es = null;
    if (S.pollTimer) clearInterval(S.pollTimer);
    S.pollTimer = null;
    S.pollPeriod = 0;
  }

  // re-read every 5 s while the stream is down, every 15 s while it is up;
  // a timer already at that period is left running (restarting it on each
  // failed reconnection would never let it fire)
  function startPolling() {
    const live = S.es && S.es.readyState === EventSource.OPEN;
    const period = live ? IDLE_REFRESH_MS : POLL_MS;
    if (S.pollTimer && S.pollPeriod === period) return;
    if (S.pollTimer) clearInterval(S.pollTimer);
    S.pollPeriod = period;
    S.pollTimer = setInterval(scheduleRefresh, period);
  }

  function scheduleRefresh() {
    if (S.refreshTimer) return;
    const wait = Math.max(0, S.lastRefresh + MIN_REFRESH_GAP_MS - Date.now());
    S.refreshTimer = setTimeout(() => {
      S.refreshTimer = null;
      refresh();
    }, wait);
  }

  async function refresh() {
    if (!S.session) return;
    if (S.refreshing) {
      S.refreshAgain = true;
      return;
    }
    S.refreshing = true;
    S.lastRefresh = Date.now();
    try {
      await render(false);
    } finally {
      S.refreshing = false;
      if (S.refreshAgain) {
        S.refreshAgain = false;
        scheduleRefresh();
      }
    }
  }

  let debounceTimer = null;
  function debounceRender() {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => render(false), 400);
  }

  function banner(msg) {
    const b = $("banner");
    b.textContent = msg || "";
    b.hidden = !msg;
  }

  // render(fresh): re-read what the current view shows and draw it. fresh is
  // true when the view was just entered (the form controls are built anew).
  async function render(fresh) {
    if (!S.session) return;
    const route = S.route;
    const seq = ++S.renderStarted;
    let node;
    try {
      S.status = await api("/api/status");
      if (route.view === "run" && !S.states) S.states = await api("/api/states");
      switch (route.view) {
        case "run":
          node = await viewRun(route.arg);
          break;
        case "releases":
          node = viewReleases();
          break;
        case "consumers":
          node = await viewConsumers();
          break;
        case "dead":
          node = await viewDead();
          break;
        case "outputs":
          node = await viewOutputs();
          break;
        default:
          node = viewRuns();
      }
      banner("");
    } catch (e) {
      if (e.status === 401) return;
      banner("Cannot read the dashboard's data: " + e.message + " (retrying)");
      return;
    }
    if (route !== S.route || !S.session) return; // the operator moved on meanwhile
    if (seq < S.renderDrawn) return; // a newer render was drawn meanwhile
    const view = $("view");
    // nothing changed: leave the page alone (a click or a selection in
    // progress is not disturbed)
    if (view.firstChild && view.dataset.view === route.view && node.isEqualNode(view.firstChild)) {
      S.renderDrawn = seq; // what it read is on the page already
      return;
    }
    // a button held down: redraw once it is released and its click is handled
    if (S.pointerDown) {
      S.pendingRender = true;
      return;
    }
    S.renderDrawn = seq;
    // keep the focus and the value of a control being typed into
    const act = document.activeElement;
    const keep = act && act.id && view.contains(act) ? act.id : null;
    const keepValue = keep && act.tagName === "INPUT" ? act.value : null;
    let caret = null;
    try {
      if (keepValue !== null) caret = [act.selectionStart, act.selectionEnd];
    } catch (e) {
      caret = null; // a number field has no selection
    }
    const scroll = window.scrollY;
    clear(view);
    view.appendChild(node);
    view.dataset.view = route.view;
    view.dataset.updated = new Date().toISOString();
    if (keep && $(keep)) {
      const e = $(keep);
      if (keepValue !== null) e.value = keepValue;
      e.focus();
      try {
        if (caret && caret[0] !== null) e.setSelectionRange(caret[0], caret[1]);
      } catch (err) {
        /* a number field has no selection */
      }
    }
    if (!fresh) window.scrollTo(0, scroll);
  }

  // --- runs -------------------------------------------------------------------------------

  const JOB_STATES = ["pending", "in_progress", "retrying", "complete", "dead", "canceled", "discarded"];
  const RUN_STATES = ["publishing", "running", "complete", "failed", "canceled"];

  function jobCounts(jobs) {
    return h(
      "span",
      { class: "jobcounts" },
      JOB_STATES.filter((k) => jobs && (jobs[k] || k === "complete")).map((k) =>
        h("span", { class: "jc state-" + k, data: { field: "jobs." + k, value: jobs[k] }, title: k.replace("_", " ") }, k.replace("_", " ") + " ", h("b", null, num(jobs[k])))
      )
    );
  }

  function errorsList(errs) {
    if (!errs || !errs.length) return h("span", { class: "muted" }, "none");
    return h(
      "ul",
      { class: "errors" },
      errs.slice(0, 3).map((e) =>
        h("li", { data: { jobId: e.job_id } }, h("span", { class: "muted" }, when(e.at), " ", e.state, ": "), h("span", { class: "errtext" }, e.error))
      ),
      errs.length > 3 ? h("li", { class: "muted" }, "and " + (errs.length - 3) + " more") : null
    );
  }

  function viewRuns() {
    const runs = (S.status && S.status.runs) || [];
    const wrap = h("section", { id: "runs-view" }, h("h1", null, "Runs"));
    if (!runs.length) {
      wrap.appendChild(h("p", { class: "muted" }, "No runs yet: gradeq-publish starts one."));
      return wrap;
    }
    const table = h(
      "table",
      { id: "runs-table", class: "grid" },
      h(
        "thead",
        null,
        h("tr", null, ["Run", "Release", "State", "Progress", "Learners", "Jobs", "Learners/s (1 min)", "ETA", "Slowest course", "Last errors"].map((t) => h("th", null, t)))
      ),
      h(
        "tbody",
        null,
        runs.map((r) =>
          h(
            "tr",
            { data: { runId: r.run_id, state: r.state }, class: "run-row" },
            h("td", null, h("a", { href: "#/run/" + encodeURIComponent(r.run_id), class: "mono", title: r.run_id, data: { field: "run_id" } }, shortId(r.run_id)), h("div", { class: "muted small nowrap" }, "started ", when(r.created_at))),
            h("td", { data: { field: "release" } }, r.release),
            h("td", { data: { field: "state", value: r.state } }, badge(r.state)),
            h("td", { class: "progress-cell" }, progressBar(r.learners_complete, r.learners_total, r.state)),
            h(
              "td",
              { class: "num" },
              h("span", { data: { field: "learners_complete", value: r.learners_complete } }, num(r.learners_complete)),
              h("span", { class: "muted" }, " / "),
              h("span", { data: { field: "learners_total", value: r.learners_total } }, num(r.learners_total))
            ),
            h("td", { data: { field: "jobs", value: r.jobs ? r.jobs.total : "" } }, h("div", { class: "small muted" }, num(r.jobs && r.jobs.total), " jobs"), jobCounts(r.jobs)),
            numCell("learners_per_s", r.learners_per_s ? r.learners_per_s.last_minute : null, rate(r.learners_per_s && r.learners_per_s.last_minute)),
            numCell("eta_seconds", r.eta_seconds, r.state === "running" || r.state === "publishing" ? dur(r.eta_seconds) : "–"),
            h(
              "td",
              { data: { field: "slowest_course" } },
              r.slowest_course ? [h("span", { class: "mono" }, r.slowest_course.course_id), h("div", { class: "small muted" }, rate(r.slowest_course.ms_per_learner), " ms/learner")] : "–"
            ),
            h("td", { data: { field: "last_errors", value: (r.last_errors || []).length } }, errorsList(r.last_errors))
          )
        )
      )
    );
    wrap.appendChild(table);
    return wrap;
  }

  // --- one run -------------------------------------------------------------------------------

  async function viewRun(runId) {
    if (!runId) return h("p", null, "No run given.");
    const q = new URLSearchParams({ limit: String(JOB_PAGE), offset: String(S.jobFilter.offset) });
    if (S.jobFilter.state) q.set("state", S.jobFilter.state);
    if (S.jobFilter.course) q.set("course", S.jobFilter.course);
    const enc = encodeURIComponent(runId);
    const [info, jobs] = await Promise.all([api("/api/runs/" + enc), api("/api/runs/" + enc + "/jobs?" + q.toString())]);
    const details = await Promise.all(
      [...S.openJobs].map((id) =>
        api("/api/jobs/" + encodeURIComponent(id)).catch((e) => ({ error: e.message, id }))
      )
    );
    const detailById = new Map();
    for (const d of details) if (d && d.job) detailById.set(d.job.job_id, d);

    const r = info.run;
    const wrap = h("section", { id: "run-view", data: { runId: r.run_id, state: r.state } });
    wrap.appendChild(
      h("div", { class: "title-row" }, h("h1", null, "Run ", h("span", { class: "mono", data: { field: "run_id" } }, r.run_id)), badge(r.state), h("span", { class: "spacer" }), cancelButton(r))
    );
    wrap.appendChild(actionResult());
    wrap.appendChild(
      h(
        "div",
        { class: "cards" },
        card("Release", h("span", { data: { field: "release" } }, r.release)),
        card("Learners", h("span", { data: { field: "learners_complete", value: r.learners_complete } }, num(r.learners_complete)), h("span", { class: "muted" }, " of "), h("span", { data: { field: "learners_total", value: r.learners_total } }, num(r.learners_total))),
        card("Learners/s, last minute", h("span", { data: { field: "learners_per_s", value: r.learners_per_s ? r.learners_per_s.last_minute : "" } }, rate(r.learners_per_s && r.learners_per_s.last_minute)), h("div", { class: "small muted" }, "overall ", rate(r.learners_per_s && r.learners_per_s.overall))),
        card("ETA", h("span", { data: { field: "eta_seconds", value: r.eta_seconds } }, r.state === "running" || r.state === "publishing" ? dur(r.eta_seconds) : "–")),
        card("Slowest course", r.slowest_course ? [h("span", { class: "mono" }, r.slowest_course.course_id), h("div", { class: "small muted" }, rate(r.slowest_course.ms_per_learner), " ms/learner")] : "–"),
        card("Created", when(r.created_at), h("div", { class: "small muted" }, r.finished_at ? "finished " + when(r.finished_at) : "published " + when(r.published_at)))
      )
    );
    wrap.appendChild(progressBar(r.learners_complete, r.learners_total, r.state));
    if (r.last_errors && r.last_errors.length) wrap.appendChild(h("div", { class: "card" }, h("h3", null, "Last errors"), errorsList(r.last_errors)));

    // the state machines
    if (S.states) {
      const runCounts = {};
      runCounts[r.state] = 1;
      wrap.appendChild(
        h(
          "div",
          { class: "machines" },
          h("div", { class: "card machine", id: "run-machine" }, h("h3", null, "Run states"), machine(S.states.run, runCounts, "run", r.state)),
          h("div", { class: "card machine", id: "job-machine" }, h("h3", null, "Job states (jobs of this run in each)"), machine(S.states.job, info.jobs_by_state || {}, "job", null))
        )
      );
    }

    // jobs by course
    const courses = info.jobs_by_course || [];
    wrap.appendChild(h("h2", null, "Courses"));
    wrap.appendChild(
      h(
        "table",
        { id: "courses-table", class: "grid" },
        h("thead", null, h("tr", null, ["Course", "Jobs", "Complete", "Dead", "Learners", ""].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          courses.map((c) =>
            h(
              "tr",
              { data: { courseId: c.course_id } },
              h("td", { class: "mono" }, c.course_id),
              numCell("jobs", c.jobs),
              numCell("complete", c.complete),
              h("td", { class: "num" + (c.dead ? " bad" : ""), data: { field: "dead", value: c.dead } }, num(c.dead)),
              numCell("learners", c.learners),
              h("td", null, h("button", { type: "button", class: "link", on: { click: () => setJobFilter({ course: c.course_id }) } }, "show jobs"))
            )
          )
        )
      )
    );

    // jobs, filtered
    wrap.appendChild(h("h2", null, "Jobs"));
    const stateSel = h(
      "select",
      { id: "job-filter-state", on: { change: (e) => setJobFilter({ state: e.target.value }) } },
      h("option", { value: "" }, "every state"),
      ((S.states && S.states.job && S.states.job.states) || JOB_STATES).map((st) =>
        h("option", { value: st, selected: st === S.jobFilter.state }, st + " (" + num((info.jobs_by_state || {})[st] || 0) + ")")
      )
    );
    const courseSel = h(
      "select",
      { id: "job-filter-course", on: { change: (e) => setJobFilter({ course: e.target.value }) } },
      h("option", { value: "" }, "every course"),
      courses.map((c) => h("option", { value: c.course_id, selected: c.course_id === S.jobFilter.course }, c.course_id))
    );
    const total = jobs.total || 0;
    const from = total ? S.jobFilter.offset + 1 : 0;
    const to = Math.min(total, S.jobFilter.offset + JOB_PAGE);
    wrap.appendChild(
      h(
        "div",
        { class: "filters" },
        h("label", null, "State ", stateSel),
        h("label", null, "Course ", courseSel),
        h("span", { class: "muted", id: "jobs-shown", data: { total } }, num(from), "–", num(to), " of ", num(total)),
        h("button", { type: "button", id: "jobs-prev", disabled: S.jobFilter.offset === 0, on: { click: () => setJobFilter({ offset: Math.max(0, S.jobFilter.offset - JOB_PAGE) }, true) } }, "‹ previous"),
        h("button", { type: "button", id: "jobs-next", disabled: to >= total, on: { click: () => setJobFilter({ offset: S.jobFilter.offset + JOB_PAGE }, true) } }, "next ›")
      )
    );
    const tbody = h("tbody");
    for (const j of jobs.jobs || []) {
      const open = S.openJobs.has(j.job_id);
      tbody.appendChild(
        h(
          "tr",
          { class: "job-row" + (open ? " open" : ""), data: { jobId: j.job_id, state: j.state }, tabindex: 0, title: "Show this job's history", on: { click: () => toggleJob(j.job_id), keydown: (e) => (e.key === "Enter" ? toggleJob(j.job_id) : null) } },
          h("td", null, h("span", { class: "caret" }, open ? "▾" : "▸"), " ", h("span", { class: "mono" }, j.course_id)),
          numCell("seq", j.seq),
          numCell("learners", j.learners),
          h("td", { data: { field: "state", value: j.state } }, badge(j.state)),
          numCell("attempts", j.attempts),
          h("td", { class: "mono small" }, j.consumer || "–"),
          h("td", { class: "small" }, when(j.finished_at || j.started_at || j.created_at)),
          numCell("total_ms", j.timings ? j.timings.total_ms : null, ms(j.timings && j.timings.total_ms)),
          h("td", { class: "errtext small", data: { field: "last_error" } }, j.last_error ? (j.error_class ? "[" + j.error_class + "] " : "") + j.last_error : "")
        )
      );
      if (open) tbody.appendChild(jobDetailRow(j, detailById.get(j.job_id)));
    }
    wrap.appendChild(
      h(
        "table",
        { id: "jobs-table", class: "grid" },
        h("thead", null, h("tr", null, ["Course", "Seq", "Learners", "State", "Attempts", "Consumer", "Last change", "Time", "Last error"].map((t) => h("th", null, t)))),
        tbody
      )
    );
    if (!(jobs.jobs || []).length) wrap.appendChild(h("p", { class: "muted" }, "No job matches."));
    return wrap;
  }

  function card(title, ...body) {
    return h("div", { class: "card stat" }, h("div", { class: "stat-title" }, title), h("div", { class: "stat-value" }, body));
  }

  function setJobFilter(change, keepPage) {
    Object.assign(S.jobFilter, change);
    if (!keepPage) S.jobFilter.offset = 0;
    render(false);
  }

  function toggleJob(id) {
    if (S.openJobs.has(id)) S.openJobs.delete(id);
    else S.openJobs.add(id);
    render(false);
  }

  function jobDetailRow(j, d) {
    const cell = h("td", { colspan: 9 });
    const row = h("tr", { class: "job-detail", data: { jobDetail: j.job_id } }, cell);
    if (!d) {
      cell.appendChild(h("p", { class: "muted" }, "Loading…"));
      return row;
    }
    const t = j.timings || {};
    const stages = ["load_ms", "fetch_ms", "compute_ms", "write_ms"];
    const sum = stages.reduce((a, k) => a + (t[k] || 0), 0);
    const timing = h(
      "div",
      { class: "timings" },
      h("h4", null, "Stages"),
      sum ? null : h("p", { class: "small muted" }, "No stage timings recorded for this job."),
      !sum ? null : h(
        "div",
        { class: "stagebar" },
        stages.map((k) => {
          const seg = h("span", { class: "seg seg-" + k, title: k.replace("_ms", "") + " " + ms(t[k]) });
          seg.style.width = (sum ? (100 * (t[k] || 0)) / sum : 0).toFixed(1) + "%";
          return seg;
        })
      ),
      !sum && t.total_ms == null ? null : h(
        "dl",
        { class: "stages" },
        stages.concat(["total_ms"]).map((k) => [h("dt", null, k.replace("_ms", "")), h("dd", { data: { field: k, value: t[k] } }, ms(t[k]))])
      )
    );
    const events = h(
      "div",
      { class: "history" },
      h("h4", null, "History"),
      h(
        "table",
        { class: "grid small" },
        h("thead", null, h("tr", null, ["At", "From", "To", "By", "Detail"].map((x) => h("th", null, x)))),
        h(
          "tbody",
          null,
          (d.events || []).map((e) =>
            h("tr", { class: "event" }, h("td", null, when(e.at)), h("td", null, e.from_state ? badge(e.from_state) : "–"), h("td", null, badge(e.to_state)), h("td", { class: "mono" }, e.by || ""), h("td", { class: "errtext" }, e.detail || ""))
          )
        )
      )
    );
    const users = d.first_user_ids && d.first_user_ids.length ? h("p", { class: "small" }, "First learners: ", h("span", { class: "mono" }, d.first_user_ids.join(", "))) : null;
    cell.appendChild(h("div", { class: "detail" }, h("p", { class: "small muted mono" }, "job ", j.job_id), users, timing, events));
    return row;
  }

  function cancelButton(r) {
    if (!isOperator()) return null;
    const active = r.state === "running" || r.state === "publishing";
    return h(
      "button",
      {
        type: "button",
        id: "cancel-run",
        class: "danger operator-only",
        disabled: !active,
        title: active ? "Cancel every job of this run not yet finished" : "The run has finished",
        on: {
          click: () =>
            act({
              title: "Cancel run",
              text: "Cancel run " + r.run_id + "? Jobs not yet graded are marked canceled; consumers skip them.",
              details: ["release " + r.release, num(r.jobs ? r.jobs.total - r.jobs.complete : null) + " jobs not complete"],
              path: "/api/runs/" + encodeURIComponent(r.run_id) + "/cancel",
              body: {},
              done: (a) => "Canceled " + num(a.canceled_jobs) + " jobs of run " + shortId(a.run_id || r.run_id) + ".",
            }),
        },
      },
      "Cancel run"
    );
  }

  // draw a state machine as SVG: states in columns by their longest distance
  // from the first state (edges that go back drawn as arcs), with counts.
  function machine(m, counts, kind, current) {
    if (!m || !m.states || !m.states.length) return h("p", { class: "muted" }, "unknown");
    // the server's order may be any (alphabetical): lay out from the states
    // nothing leads to, then in the order the lifecycle is known to go,
    // then the rest as given
    const known = kind === "job" ? JOB_STATES : RUN_STATES;
    const given = m.states.slice();
    for (const [a, b] of m.transitions || []) for (const x of [a, b]) if (!given.includes(x)) given.push(x);
    const hasIn = new Set((m.transitions || []).filter(([a, b]) => a !== b).map(([, b]) => b));
    const order = (x) => (hasIn.has(x) ? 1000 : 0) + (known.includes(x) ? known.indexOf(x) : 100 + given.indexOf(x));
    const states = given.slice().sort((x, y) => order(x) - order(y));
    const out = new Map(states.map((x) => [x, []]));
    for (const [a, b] of m.transitions || []) if (a !== b) out.get(a).push(b);
    for (const l of out.values()) l.sort((x, y) => order(x) - order(y));
    // back edges by depth-first search from the states in order
    const back = new Set();
    const mark = new Map();
    const visit = (u) => {
      mark.set(u, 1);
      for (const v of out.get(u)) {
        if (mark.get(v) === 1) back.add(u + "\u0000" + v);
        else if (!mark.has(v)) visit(v);
      }
      mark.set(u, 2);
    };
    for (const x of states) if (!mark.has(x)) visit(x);
    const rank = new Map(states.map((x) => [x, 0]));
    for (let i = 0; i < states.length; i++)
      for (const [a, b] of m.transitions || []) if (a !== b && !back.has(a + "\u0000" + b) && rank.get(b) < rank.get(a) + 1) rank.set(b, rank.get(a) + 1);
    const cols = [];
    for (const x of states) (cols[rank.get(x)] = cols[rank.get(x)] || []).push(x);
    const BW = 118, BH = 44, GX = 62, GY = 22, PAD = 24;
    const pos = new Map();
    const maxRows = Math.max(...cols.map((c) => (c ? c.length : 0)));
    const height = PAD * 2 + maxRows * BH + (maxRows - 1) * GY;
    cols.forEach((c, ci) => {
      if (!c) return;
      const colH = c.length * BH + (c.length - 1) * GY;
      c.forEach((x, ri) => pos.set(x, { x: PAD + ci * (BW + GX), y: (height - colH) / 2 + ri * (BH + GY) }));
    });
    const width = PAD * 2 + cols.length * BW + (cols.length - 1) * GX;
    const uid = kind + "-arrow";
    const svg = s("svg", { viewBox: "0 0 " + width + " " + height, width, height, class: "machine-svg", role: "img", "aria-label": kind + " state machine", data: { machine: kind } });
    svg.appendChild(s("defs", null, s("marker", { id: uid, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
    // forward edges leave a box's right side and enter the next one's left
    // side at points spread along the side, ordered by the other end
    const outPort = new Map(), inPort = new Map();
    const fwd = (m.transitions || []).filter(([a, b]) => rank.get(b) > rank.get(a));
    for (const x of states) {
      const outs = fwd.filter(([a]) => a === x).sort((e1, e2) => pos.get(e1[1]).y - pos.get(e2[1]).y);
      outs.forEach((e, i) => outPort.set(e[0] + "\u0000" + e[1], pos.get(x).y + (BH * (i + 1)) / (outs.length + 1)));
      const ins = fwd.filter(([, b]) => b === x).sort((e1, e2) => pos.get(e1[0]).y - pos.get(e2[0]).y);
      ins.forEach((e, i) => inPort.set(e[0] + "\u0000" + e[1], pos.get(x).y + (BH * (i + 1)) / (ins.length + 1)));
    }
    for (const [a, b] of m.transitions || []) {
      const p = pos.get(a), q = pos.get(b);
      let d;
      if (a === b) {
        d = "M" + (p.x + BW / 2 - 12) + "," + p.y + " C" + (p.x + BW / 2 - 22) + "," + (p.y - 22) + " " + (p.x + BW / 2 + 22) + "," + (p.y - 22) + " " + (p.x + BW / 2 + 12) + "," + p.y;
      } else if (rank.get(b) > rank.get(a)) {
        const x1 = p.x + BW, y1 = outPort.get(a + "\u0000" + b), x2 = q.x, y2 = inPort.get(a + "\u0000" + b);
        const mx = (x1 + x2) / 2;
        d = "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2;
      } else if (rank.get(b) === rank.get(a)) {
        const down = q.y > p.y;
        const x = p.x + BW - 14;
        d = "M" + x + "," + (down ? p.y + BH : p.y) + " L" + x + "," + (down ? q.y : q.y + BH);
      } else {
        // back: an arc below the boxes
        const x1 = p.x + BW / 2, y1 = p.y + BH, x2 = q.x + BW / 2 + 10, y2 = q.y + BH;
        const low = Math.max(y1, y2) + 18 + 6 * (rank.get(a) - rank.get(b));
        d = "M" + x1 + "," + y1 + " C" + x1 + "," + low + " " + x2 + "," + low + " " + x2 + "," + y2;
      }
      svg.appendChild(s("path", { d, class: "edge" + (rank.get(b) < rank.get(a) ? " back" : ""), "marker-end": "url(#" + uid + ")", data: { from: a, to: b } }, s("title", null, a + " → " + b)));
    }
    for (const x of states) {
      const p = pos.get(x);
      const n = counts[x] || 0;
      const cls = "node state-" + x.replace(/[^a-z_]/g, "") + (n ? " has" : "") + (current === x ? " current" : "");
      svg.appendChild(
        s(
          "g",
          { class: cls, data: { state: x, count: kind === "job" ? n : undefined } },
          s("rect", { x: p.x, y: p.y, width: BW, height: BH, rx: 7 }),
          s("text", { x: p.x + BW / 2, y: p.y + (kind === "job" ? 18 : BH / 2 + 5), "text-anchor": "middle", class: "label" }, x.replace("_", " ")),
          kind === "job" ? s("text", { x: p.x + BW / 2, y: p.y + 36, "text-anchor": "middle", class: "count" }, num(n)) : null
        )
      );
    }
    return svg;
  }

  // --- releases --------------------------------------------------------------------------------

  function viewReleases() {
    const rels = (S.status && S.status.releases) || [];
    const wrap = h("section", { id: "releases-view" }, h("h1", null, "Releases"));
    if (!rels.length) {
      wrap.appendChild(h("p", { class: "muted" }, "No release."));
      return wrap;
    }
    wrap.appendChild(
      h(
        "table",
        { id: "releases-table", class: "grid" },
        h("thead", null, h("tr", null, ["Release", "State", "Ready", "Unacked", "Consumers", "Retry tiers (ready)", "Dead (ready)", "Dead (unacked)", ""].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          rels.map((r) => {
            const q = r.queues;
            if (!q)
              return h("tr", { data: { release: r.name } }, h("td", { class: "mono" }, r.name), h("td", null, badge(r.state)), h("td", { colspan: 7, class: "muted" }, "queues unknown: the broker cannot be reached"));
            const w = q.work || {}, dq = q.dead || {};
            return h(
              "tr",
              { data: { release: r.name } },
              h("td", { class: "mono" }, r.name),
              h("td", null, badge(r.state)),
              numCell("work.ready", w.ready),
              numCell("work.unacked", w.unacked),
              numCell("work.consumers", w.consumers),
              h("td", null, h("div", { class: "tiers" }, (q.retry || []).map((t) => h("span", { class: "tier" + (t.ready ? " busy" : ""), data: { tier: t.seconds, value: t.ready } }, dur(t.seconds), ": ", h("b", null, num(t.ready)))), (q.retry || []).length ? null : "–")),
              h("td", { class: "num" + (dq.ready ? " bad" : ""), data: { field: "dead.ready", value: dq.ready } }, num(dq.ready)),
              numCell("dead.unacked", dq.unacked),
              h("td", null, dq.ready ? h("a", { href: "#/dead", on: { click: () => (S.deadFilter.release = r.name) } }, "dead jobs") : null)
            );
          })
        )
      ),
      h("p", { class: "small muted" }, "Ready and consumers are exact at the moment of reading; unacked is the broker's last statistics sample and lags a few seconds.")
    );
    return wrap;
  }

  // --- consumers -------------------------------------------------------------------------------

  async function viewConsumers() {
    const d = await api("/api/consumers");
    const list = d.consumers || [];
    const wrap = h("section", { id: "consumers-view" }, h("h1", null, "Consumers"));
    if (!list.length) {
      wrap.appendChild(h("p", { class: "muted" }, "No gradeq-consumer is connected to the broker."));
      return wrap;
    }
    wrap.appendChild(
      h(
        "table",
        { id: "consumers-table", class: "grid" },
        h("thead", null, h("tr", null, ["Host", "PID", "Release", "Connected", "Job in hand", "Course", "Holding", "Done", "Failed"].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          list.map((c) =>
            h(
              "tr",
              { data: { connection: c.connection, pid: c.pid } },
              h("td", { class: "mono" }, c.host),
              numCell("pid", c.pid, String(c.pid)),
              h("td", { class: "mono" }, c.release),
              h("td", { class: "small" }, when(c.connected_at), h("div", { class: "muted" }, ago(c.connected_at))),
              h("td", { class: "mono", title: c.job_id || "" }, c.job_id ? shortId(c.job_id) : h("span", { class: "muted" }, "idle")),
              h("td", { class: "mono" }, c.course_id || ""),
              numCell("holding_s", c.holding_s, c.job_id ? dur(c.holding_s) : "–"),
              numCell("done", c.done),
              h("td", { class: "num" + (c.failed ? " bad" : ""), data: { field: "failed", value: c.failed } }, num(c.failed))
            )
          )
        )
      )
    );
    return wrap;
  }

  // --- dead jobs --------------------------------------------------------------------------------

  function deadQuery() {
    const f = S.deadFilter;
    const q = new URLSearchParams();
    if (f.release) q.set("release", f.release);
    if (f.course) q.set("course", f.course);
    if (f.reason) q.set("reason", f.reason);
    if (f.limit) q.set("limit", f.limit);
    return q;
  }

  async function viewDead() {
    const rels = ((S.status && S.status.releases) || []).map((r) => r.name);
    const q = deadQuery();
    const d = await api("/api/dead?" + q.toString());
    const f = S.deadFilter;
    // the filter the listing below was read with (the form may be ahead of it)
    const listed = { listedRelease: q.get("release") || "", listedCourse: q.get("course") || "", listedReason: q.get("reason") || "" };
    const wrap = h("section", { id: "dead-view", data: listed }, h("h1", null, "Dead jobs"));
    wrap.appendChild(
      h("p", { class: "small muted" }, "Listed from the database: the dead queue is never read here, so listing does not redeliver its messages.")
    );
    // the filter follows every keystroke (a live re-render keeps it), and
    // the list is read again once typing pauses or on Enter
    const input = (id, key, attrs) =>
      h("input", Object.assign({ id, value: f[key], on: {
        input: (e) => { f[key] = e.target.value.trim(); debounceRender(); },
        change: (e) => { f[key] = e.target.value.trim(); render(false); },
      } }, attrs));
    wrap.appendChild(
      h(
        "form",
        { class: "filters", id: "dead-filters", on: { submit: (e) => e.preventDefault() } },
        h(
          "label",
          null,
          "Release ",
          h("select", { id: "dead-filter-release", on: { change: (e) => { f.release = e.target.value; render(false); } } }, h("option", { value: "" }, "every release"), rels.map((n) => h("option", { value: n, selected: n === f.release }, n)))
        ),
        h("label", null, "Course ", input("dead-filter-course", "course", { placeholder: "course id", size: 28 })),
        h("label", null, "Reason contains ", input("dead-filter-reason", "reason", { placeholder: "text of the error", size: 22 })),
        h("label", null, "Show ", input("dead-filter-limit", "limit", { type: "number", min: 1, max: 1000, size: 5 })),
        h("span", { class: "muted", id: "dead-total", data: { total: d.total } }, num(d.total), " dead")
      )
    );
    wrap.appendChild(deadActions(rels, d));
    wrap.appendChild(actionResult());
    const list = d.dead || [];
    if (!list.length) {
      wrap.appendChild(h("p", { class: "muted", id: "dead-empty" }, "No dead job matches."));
      return wrap;
    }
    wrap.appendChild(
      h(
        "table",
        { id: "dead-table", class: "grid" },
        h("thead", null, h("tr", null, ["Course", "Run", "Release", "Learners", "First learners", "Attempts", "Class", "Reason", "Failed by", "At"].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          list.map((j) =>
            h(
              "tr",
              { class: "dead-row", data: { jobId: j.job_id, courseId: j.course_id, runId: j.run_id } },
              h("td", { class: "mono", data: { field: "course_id" } }, j.course_id),
              h("td", null, h("a", { class: "mono", href: "#/run/" + encodeURIComponent(j.run_id), title: j.run_id }, shortId(j.run_id))),
              h("td", { class: "mono" }, j.release),
              numCell("learners", j.learners),
              h("td", { class: "mono small first-learners" }, (j.first_user_ids || []).join(", ") + ((j.first_user_ids || []).length < (j.learners || 0) ? ", …" : "")),
              numCell("attempts", j.attempts),
              h("td", { data: { field: "error_class" } }, j.error_class || "–"),
              h("td", { class: "errtext", data: { field: "last_error" } }, j.last_error || ""),
              h("td", { class: "mono small" }, j.failed_by || "–"),
              h("td", { class: "small" }, when(j.at))
            )
          )
        )
      )
    );
    return wrap;
  }

  function deadActions(rels, d) {
    const f = S.deadFilter;
    if (!isOperator()) return h("p", { class: "small muted", id: "viewer-note" }, "Viewers read only: replay, purge and export need the operator role.");
    // the release acted on: the one chosen, else the only one there is or
    // the only one the listed jobs belong to
    const listed = [...new Set((d.dead || []).map((j) => j.release))];
    const release = f.release || (rels.length === 1 ? rels[0] : listed.length === 1 && d.total === (d.dead || []).length ? listed[0] : "");
    const sel = () => {
      const b = { release };
      if (f.course) b.course = f.course;
      if (f.reason) b.reason = f.reason;
      return b;
    };
    const what = () => [
      "release " + release,
      f.course ? "course " + f.course : "every course",
      f.reason ? "reason containing “" + f.reason + "”" : "any reason",
    ];
    const r = S.replay;
    const rin = (id, key, attrs) => h("input", Object.assign({ id, value: r[key], on: { input: (e) => (r[key] = e.target.value.trim()) } }, attrs));
    const none = !release;
    const count = d.total || 0;
    return h(
      "div",
      { class: "card actions operator-only", id: "dead-actions" },
      h("h3", null, "Act on the dead jobs selected above"),
      none ? h("p", { class: "small error" }, "Choose a release first.") : null,
      h(
        "div",
        { class: "filters" },
        h("label", null, "Replay at most ", rin("replay-limit", "limit", { type: "number", min: 1, size: 6, placeholder: "all" })),
        h("label", null, "at ", rin("replay-rate", "rate", { type: "number", min: 0, step: "any", size: 6, placeholder: "any" }), " jobs/s"),
        rels.length > 1 ? h("label", null, "to release ", h("select", { id: "replay-to", on: { change: (e) => (r.to_release = e.target.value) } }, h("option", { value: "" }, "the same"), rels.map((n) => h("option", { value: n, selected: n === r.to_release }, n)))) : null,
        h(
          "button",
          {
            type: "button",
            id: "dead-replay",
            disabled: none || !count,
            on: {
              click: () => {
                const body = sel();
                const lim = parseInt(r.limit, 10);
                const rt = parseFloat(r.rate);
                if (lim > 0) body.limit = lim;
                if (rt > 0) body.rate = rt;
                if (r.to_release && r.to_release !== release) body.to_release = r.to_release;
                act({
                  title: "Replay dead jobs",
                  text: "Send these dead jobs back to be graded again?",
                  details: what().concat([
                    lim > 0 ? "at most " + lim + " jobs" : "every matching job (" + num(count) + " listed)",
                    rt > 0 ? rt + " jobs/s" : "no rate limit",
                    body.to_release ? "to release " + body.to_release : "to the same release",
                  ]),
                  path: "/api/dead/replay",
                  body,
                  done: (a) => "Replayed " + num(a.replayed) + " jobs, skipped " + num(a.skipped) + ".",
                });
              },
            },
          },
          "Replay…"
        ),
        h(
          "button",
          {
            type: "button",
            id: "dead-export",
            disabled: none || !count,
            on: {
              click: () =>
                act({
                  title: "Export dead jobs",
                  text: "Download these dead jobs as a gradeq-replay export file?",
                  details: what(),
                  path: "/api/dead/export",
                  body: sel(),
                  download: "gradeq-dead-" + release + ".export",
                }),
            },
          },
          "Export…"
        ),
        h(
          "button",
          {
            type: "button",
            id: "dead-purge",
            class: "danger",
            disabled: none || !count,
            on: {
              click: () =>
                act({
                  title: "Purge dead jobs",
                  text: "Delete these dead jobs for good? They will not be graded; export them first to keep a copy.",
                  details: what(),
                  path: "/api/dead/purge",
                  body: sel(),
                  danger: true,
                  done: (a) => "Purged " + num(a.purged) + " jobs.",
                }),
            },
          },
          "Purge…"
        )
      )
    );
  }

  // --- outputs (grade reports) ----------------------------------------------------------------

  // output.<id>.ready / output.<id>.failed from the event stream: kept to be
  // shown (the listing is read again on every event anyway)
  function noteOutputEvent(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch (e) {
      return;
    }
    const key = m && typeof m.routing_key === "string" ? m.routing_key : "";
    const k = /^output\.([0-9a-f-]{36})\.(ready|failed)$/.exec(key);
    if (!k) return;
    const b = m.body && typeof m.body === "object" ? m.body : {};
    S.outputEvents.unshift({ output: k[1], what: k[2], course: typeof b.course === "string" ? b.course : "", at: typeof b.at === "string" ? b.at : "" });
    S.outputEvents.length = Math.min(S.outputEvents.length, 5);
  }

  function size(n) {
    if (n === null || n === undefined) return "–";
    if (n < 1024) return num(n) + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  }

  async function viewOutputs() {
    const mine = await api("/api/outputs/courses");
    const f = S.outputs;
    const courses = mine.courses || [];
    if (!f.course && courses.length) f.course = courses[0];
    const wrap = h("section", { id: "outputs-view", data: { platformUser: mine.platform_user === null ? "" : mine.platform_user } }, h("h1", null, "Outputs"));
    wrap.appendChild(
      h(
        "p",
        { id: "outputs-identity", class: "small" + (mine.message ? " warn" : " muted") },
        mine.platform_user === null
          ? mine.message
          : "Downloads as platform user " + mine.platform_user + (mine.operator ? " (a global operator: every course)" : "") + (mine.message ? ": " + mine.message : ".")
      )
    );
    const pick = (v) => {
      f.course = v.trim();
      S.lastAction = null;
      render(false);
    };
    wrap.appendChild(
      h(
        "form",
        { class: "filters", id: "outputs-filters", on: { submit: (e) => e.preventDefault() } },
        courses.length
          ? h(
              "label",
              null,
              "Course ",
              h("select", { id: "outputs-course", on: { change: (e) => pick(e.target.value) } }, courses.map((c) => h("option", { value: c, selected: c === f.course }, c)), courses.includes(f.course) || !f.course ? null : h("option", { value: f.course, selected: true }, f.course))
            )
          : null,
        h(
          "label",
          null,
          courses.length ? "or another course " : "Course ",
          h("input", { id: "outputs-course-other", placeholder: "course id", size: 30, on: { change: (e) => e.target.value.trim() && pick(e.target.value) } })
        )
      )
    );
    const evs = S.outputEvents;
    wrap.appendChild(
      h(
        "ul",
        { id: "outputs-events", class: "small" },
        evs.map((e) => h("li", { data: { output: e.output, event: e.what } }, when(e.at), " ", badge(e.what), " output ", h("span", { class: "mono", title: e.output }, shortId(e.output)), e.course ? " of " + e.course : ""))
      )
    );
    wrap.appendChild(actionResult());
    if (!f.course) {
      wrap.appendChild(h("p", { class: "muted" }, "Pick a course to list its outputs."));
      return wrap;
    }
    const list = await api("/api/outputs?course=" + encodeURIComponent(f.course));
    if (!list.length) {
      wrap.appendChild(h("p", { id: "outputs-none", class: "muted" }, "No outputs for " + f.course + ": gradeq-report makes one."));
      return wrap;
    }
    wrap.appendChild(
      h(
        "table",
        { id: "outputs-table", class: "grid", data: { course: f.course } },
        h("thead", null, h("tr", null, ["Output", "State", "Size", "SHA-256", "Created", "Kept", ""].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          list.map((o) =>
            h(
              "tr",
              { class: "output-row", data: { outputId: o.output_id, state: o.state, sha256: o.sha256 || "", size: o.size === null ? "" : o.size } },
              h("td", { class: "mono", title: o.output_id }, shortId(o.output_id), h("div", { class: "muted small" }, o.name || "")),
              h("td", null, badge(o.state)),
              h("td", { class: "num", data: { field: "size", value: o.size === null ? "" : o.size } }, size(o.size)),
              h("td", { class: "mono", title: o.sha256 || "" }, o.sha256 ? o.sha256.slice(0, 12) : "–"),
              h("td", { class: "small" }, when(o.created_at), h("div", { class: "muted" }, "by " + o.created_by)),
              h("td", { class: "small" }, o.use_once ? "use once" : o.keep_until ? "until " + when(o.keep_until) : "kept", o.downloaded_at ? h("div", { class: "muted" }, "downloaded " + when(o.downloaded_at)) : null),
              h(
                "td",
                { class: "output-actions" },
                o.can_download ? h("button", { type: "button", class: "output-download", data: { outputId: o.output_id }, on: { click: () => downloadOutput(o) } }, "Download") : null,
                o.can_delete
                  ? h(
                      "button",
                      { type: "button", class: "output-delete danger", data: { outputId: o.output_id }, on: { click: () => act({ title: "Delete output", text: "Delete this output of " + o.course_id + "? Its file is removed for everyone.", details: [o.output_id], path: "/api/outputs/" + o.output_id + "/delete", done: () => "Deleted output " + shortId(o.output_id) + "." }) } },
                      "Delete"
                    )
                  : null
              )
            )
          )
        )
      )
    );
    if (mine.platform_user === null) wrap.appendChild(h("p", { class: "small muted" }, "No download links: " + mine.message));
    return wrap;
  }

  // a short-lived signed link minted for this user, followed at once (the
  // browser downloads it: Content-Disposition attachment); the link is
  // never kept nor shown
  async function downloadOutput(o) {
    try {
      const ans = await api("/api/outputs/" + o.output_id + "/link", { method: "POST", json: {} });
      if (!ans || typeof ans.url !== "string" || !ans.url.startsWith("/outputs/")) throw new ApiError(0, "no link in the answer");
      const a = h("a", { href: ans.url, download: o.output_id + ".csv" });
      document.body.appendChild(a);
      a.click();
      a.remove();
      S.lastAction = { ok: true, text: "Downloading output " + shortId(o.output_id) + (o.use_once ? " (use once: it is deleted after this download)." : ".") };
    } catch (e) {
      S.lastAction = { ok: false, text: "Download failed (" + (e.status || "no answer") + "): " + e.message };
    }
    await render(false);
  }

  // --- actions -------------------------------------------------------------------------------------

  function actionResult() {
    const a = S.lastAction;
    return h("p", { id: "action-result", class: a ? (a.ok ? "ok" : "error") : "", role: "status", data: { ok: a ? String(a.ok) : "" } }, a ? a.text : "");
  }

  function confirmDialog(title, text, details) {
    const dlg = $("confirm-dialog");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    const ul = $("confirm-details");
    clear(ul);
    for (const d of details || []) ul.appendChild(h("li", null, d));
    return new Promise((resolve) => {
      const done = () => {
        dlg.removeEventListener("close", done);
        resolve(dlg.returnValue === "ok");
      };
      dlg.addEventListener("close", done);
      dlg.returnValue = "";
      dlg.showModal();
      $("confirm-cancel").focus();
    });
  }

  async function act(o) {
    if (!(await confirmDialog(o.title, o.text, o.details))) return;
    const body = Object.assign({}, o.body, { confirm: true });
    try {
      if (o.download) {
        const r = await api(o.path, { method: "POST", json: body, raw: true });
        const blob = await r.blob();
        const cd = r.headers.get("Content-Disposition") || "";
        const m = /filename="?([^";]+)"?/.exec(cd);
        const a = h("a", { href: URL.createObjectURL(blob), download: m ? m[1] : o.download });
        document.body.appendChild(a);
        a.click();
        a.remove();
        S.lastAction = { ok: true, text: "Exported " + num(blob.size) + " bytes." };
      } else {
        const ans = await api(o.path, { method: "POST", json: body });
        S.lastAction = { ok: true, text: o.done ? o.done(ans || {}) : "Done." };
      }
    } catch (e) {
      S.lastAction = { ok: false, text: o.title + " failed (" + (e.status || "no answer") + "): " + e.message };
    }
    await render(false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
