#!/usr/bin/env node
// Drives Debian's chromium (headless, through puppeteer-core) through the
// dashboard of a running gradeq-web, for tests/integration/81-web-browser.sh.
//
//   node dashboard.js PHASE
//
// PHASE is one of:
//   watch   log in, open the runs page before the run has started, wait
//           (without reloading) for the page to show the run finished, then
//           compare the page's numbers with `gradeq-admin status --json`
//   dead    list the dead jobs of BAD_COURSE and check their reason
//   viewer  as the viewer: no replay button, and the API refuses a replay
//           with 403 although the CSRF token is right
//   replay  as the operator: export, then replay BAD_COURSE's dead jobs by
//           clicking and confirming in the page's dialog, the event stream
//           cut: the page polls
//   cancel  as the operator: cancel RUN_ID from its page
//   outputs as a course team member (a dashboard user mapped to a platform
//           user): open the Outputs view before the report exists, touch
//           WORK_DIR/outputs-open, see the report turn sealed live (its
//           output.<id>.ready event shown, no reload), download it from the
//           page and check the file's SHA-256 and size against the listing;
//           the path of the file goes to WORK_DIR/outputs-downloaded
//
// Environment: WEB_URL (http://127.0.0.1:PORT), WEB_USER, WEB_PASSWORD,
// RUN_ID, RELEASE, BAD_COURSE, EXPECT_* (see each phase), SHOT_DIR (where
// screenshots go), WORK_DIR (the browser's profile, marks for the test),
// GRADEQ_ADMIN (the gradeq-admin to compare with),
// CHROMIUM (default /usr/bin/chromium), WAIT_MS (the safety net of every
// wait, default 180000). Prints one line per check; exits non-zero with a
// line starting with FAIL on the first one that does not hold.
"use strict";

const { execFileSync } = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const puppeteer = require("puppeteer-core");

const env = (k, d) => {
  const v = process.env[k];
  if (v === undefined || v === "") {
    if (d !== undefined) return d;
    fail("the environment lacks " + k);
  }
  return v;
};
const WAIT_MS = parseInt(env("WAIT_MS", "180000"), 10);

function fail(msg) {
  console.error("FAIL dashboard.js: " + msg);
  process.exit(1);
}
function check(what, cond, detail) {
  if (!cond) throw new Error(what + (detail ? ": " + detail : ""));
  console.error("ok: " + what);
}

// until(page, WHAT, FN, ARGS...): wait until FN (run in the page) is true;
// on timeout the error names WHAT.
async function until(page, what, fn, ...args) {
  try {
    await page.waitForFunction(fn, {}, ...args);
  } catch (e) {
    throw new Error("waiting for " + what + ": " + e.message);
  }
}
// waitSel(page, SELECTOR, WHAT): the same for an element
async function waitSel(page, sel, what, opts) {
  try {
    return await page.waitForSelector(sel, opts);
  } catch (e) {
    throw new Error("waiting for " + (what || sel) + ": " + e.message);
  }
}

// click and select as a person would. puppeteer finds the element, then
// uses it in another round trip: a live update may redraw it in between.
// Then the redrawn one, found again once it is there, is used: a click on
// the detached one would be lost. (A held click is never redrawn under the
// pointer: the page waits for its release.)
async function again(page, sel, f) {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (e) {
      if (i >= 10 || !/detached|not clickable|Execution context was destroyed/.test(e.message)) throw e;
      await waitSel(page, sel, sel + " drawn again");
    }
  }
}
const click = (page, sel) => again(page, sel, () => page.click(sel));
// page.select dispatches the change on the element found, which the page
// handles even when a redraw detached it; a check after it waits for the
// page to have acted on it, never for the control's value alone
const select = (page, sel, v) => again(page, sel, () => page.select(sel, v));
// typeInto(page, ID, TEXT): focus the field and type, as a person does;
// found and focused in one step (page.focus finds, then focuses in another
// round trip: a redraw in between leaves the focus on a detached field and
// the keys reach nothing). The page keeps the focus, the text and the caret
// of a field being typed into when a live update redraws the view.
async function typeInto(page, id, text) {
  await until(page, "#" + id + " focused", (id) => {
    const e = document.getElementById(id);
    if (e && document.activeElement !== e) e.focus();
    return document.activeElement === e && e !== null;
  }, id);
  await page.keyboard.type(text);
  await until(page, "#" + id + " holding what was typed", (id, t) => document.getElementById(id).value === t, id, text);
}

// shot(page, NAME): a screenshot of the whole page, as high as its content
async function shot(page, name) {
  await page.setViewport({ width: 1400, height: 300 });
  await page.screenshot({ path: path.join(env("SHOT_DIR"), name), fullPage: true });
  await page.setViewport({ width: 1400, height: 900 });
}

async function launch() {
  const exe = env("CHROMIUM", "/usr/bin/chromium");
  if (!fs.existsSync(exe)) fail(exe + " not found: tools/deps installs chromium");
  const browser = await puppeteer.launch({
    executablePath: exe,
    headless: true,
    pipe: true, // chromium ends with this process, whatever way it ends
    userDataDir: fs.mkdtempSync(path.join(env("WORK_DIR"), "profile-")),
    // as root (CI) chromium needs --no-sandbox; /dev/shm may be small
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run", "--no-default-browser-check"],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  page.on("pageerror", (e) => problems.push("script error: " + e.message));
  page.on("console", (m) => {
    // a failed request (the 401 of /api/session before login) is logged
    // as an error by chromium itself; the page's own errors are pageerror
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) problems.push("console: " + m.text());
  });
  page.on("dialog", (d) => {
    problems.push("a native dialog opened: " + d.message());
    d.dismiss();
  });
  return { browser, page, problems };
}

async function login(page, user, password) {
  await page.goto(env("WEB_URL") + "/", { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#login-form", { visible: true });
  await page.type("#login-user", user);
  await page.type("#login-password", password);
  await Promise.all([page.waitForSelector("#nav", { visible: true }), click(page, "#login-submit")]);
  const role = await page.$eval("#who-role", (e) => e.textContent);
  console.error("logged in as " + user + " (" + role + ")");
  return role;
}

async function go(page, hash, selector) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await page.waitForSelector(selector);
}

// the numbers the runs page shows for RUN, from the data- attributes
function readRun(page, runId) {
  return page.evaluate((id) => {
    const row = document.querySelector('#runs-table tr[data-run-id="' + id + '"]');
    if (!row) return null;
    const val = (f) => {
      const e = row.querySelector('[data-field="' + f + '"]');
      return e ? e.dataset.value : undefined;
    };
    const text = (f) => {
      const e = row.querySelector('[data-field="' + f + '"]');
      return e ? e.textContent : undefined;
    };
    const jobs = {};
    for (const k of ["pending", "in_progress", "retrying", "complete", "dead", "canceled", "discarded"]) {
      const v = val("jobs." + k);
      jobs[k] = v === undefined ? 0 : Number(v);
    }
    jobs.total = Number(val("jobs"));
    return {
      state: val("state"),
      learners_complete: Number(val("learners_complete")),
      learners_complete_text: text("learners_complete"),
      learners_total: Number(val("learners_total")),
      progress: Number(val("progress")),
      jobs,
    };
  }, runId);
}

async function phaseWatch(page) {
  const runId = env("RUN_ID");
  const expectComplete = Number(env("EXPECT_LEARNERS_COMPLETE"));
  const expectState = env("EXPECT_STATE");
  await login(page, env("WEB_USER"), env("WEB_PASSWORD"));
  await go(page, "#/runs", "#runs-table");
  await page.waitForSelector('#runs-table tr[data-run-id="' + runId + '"]');
  // a mark that a reload would wipe out
  await page.evaluate(() => {
    window.__gradeqNoReload = 42;
  });
  const first = await readRun(page, runId);
  check("the run is listed before any job is graded", first && first.learners_complete === 0, JSON.stringify(first));
  await until(page, "the live indicator to say live", () => document.getElementById("live").dataset.live === "live");
  check("the page follows the event stream", true);
  // tell the test to start the consumers
  fs.writeFileSync(path.join(env("WORK_DIR"), "watching"), "");
  const seen = new Set([first.learners_complete]);
  const deadline = Date.now() + WAIT_MS;
  let last = first;
  // the condition is polled in the page (the page updates itself; this only looks)
  for (;;) {
    last = await readRun(page, runId);
    if (last) seen.add(last.learners_complete);
    if (last && last.state === expectState && last.learners_complete === expectComplete) break;
    if (Date.now() > deadline) throw new Error("the page did not show the run " + expectState + " with " + expectComplete + " learners; last: " + JSON.stringify(last));
    await new Promise((r) => setTimeout(r, 100));
  }
  const mark = await page.evaluate(() => window.__gradeqNoReload);
  check("the progress rose to the end without a reload", mark === 42);
  check("the progress rose (" + [...seen].sort((a, b) => a - b).join(" -> ") + ")", seen.size >= 2);
  check("the progress bar is full but for the dead learners", Math.abs(last.progress - (100 * expectComplete) / last.learners_total) < 0.1, String(last.progress));
  check("the number is shown as text too", last.learners_complete_text.replace(/,/g, "") === String(expectComplete), last.learners_complete_text);

  // the numbers equal `gradeq-admin status --json` at the same moment (the
  // run is finished: its numbers no longer move)
  const st = JSON.parse(execFileSync(env("GRADEQ_ADMIN"), ["status", "--json"], { encoding: "utf8" }));
  const run = st.runs.find((r) => r.run_id === runId);
  check("status --json lists the run", !!run);
  const page2 = await readRun(page, runId);
  for (const k of ["state", "learners_complete", "learners_total"]) check(k + " on the page equals status --json (" + run[k] + ")", page2[k] === run[k], String(page2[k]));
  for (const k of Object.keys(page2.jobs))
    check("jobs." + k + " on the page equals status --json (" + run.jobs[k] + ")", page2.jobs[k] === run.jobs[k], String(page2.jobs[k]));
  const errs = await page.$eval('#runs-table tr[data-run-id="' + runId + '"] [data-field="last_errors"]', (e) => e.textContent);
  check("the run's last errors are shown", /GRADER/.test(errs), errs);
  await shot(page, "web-runs.png");

  // the run's own page: its jobs, the job state machine with the counts
  await click(page, '#runs-table tr[data-run-id="' + runId + '"] a[data-field="run_id"]');
  await page.waitForSelector("#run-view #jobs-table");
  const counts = await page.$$eval('#job-machine g[data-state]', (gs) => Object.fromEntries(gs.map((g) => [g.dataset.state, Number(g.dataset.count)])));
  check("the job state machine counts the dead jobs (" + run.jobs.dead + ")", counts.dead === run.jobs.dead, JSON.stringify(counts));
  check("the job state machine counts the complete jobs (" + run.jobs.complete + ")", counts.complete === run.jobs.complete, JSON.stringify(counts));
  await select(page, "#job-filter-state", "dead");
  await until(page, "the dead jobs alone in the jobs table", (n) => document.querySelectorAll('#jobs-table tr.job-row[data-state="dead"]').length === n && document.querySelectorAll("#jobs-table tr.job-row").length === n, run.jobs.dead);
  check("the jobs filter by state shows the dead ones", true);
  await click(page, "#jobs-table tr.job-row");
  await page.waitForSelector("#jobs-table tr.job-detail tr.event");
  const hist = await page.$$eval("#jobs-table tr.job-detail tr.event", (rs) => rs.map((r) => r.textContent));
  check("an opened job shows its history, ending dead", hist.length >= 2 && /dead/.test(hist[hist.length - 1]), JSON.stringify(hist));
  await shot(page, "web-run.png");
  // a complete job's stage timings; the filter by course
  await click(page, "#jobs-table tr.job-row"); // close it
  await select(page, "#job-filter-state", "complete");
  await until(page, "the complete jobs alone in the jobs table", (n) => document.querySelectorAll('#jobs-table tr.job-row[data-state="complete"]').length === n && document.querySelectorAll("#jobs-table tr.job-row").length === n, run.jobs.complete);
  await click(page, "#jobs-table tr.job-row");
  await page.waitForSelector('#jobs-table tr.job-detail dd[data-field="total_ms"]');
  const total = await page.$eval('#jobs-table tr.job-detail dd[data-field="total_ms"]', (e) => e.dataset.value);
  check("an opened complete job shows its stage timings (total " + total + " ms)", total !== undefined && total !== "" && Number(total) >= 0, String(total));
  await select(page, "#job-filter-state", "");
  await select(page, "#job-filter-course", env("BAD_COURSE"));
  await until(page, "the broken course's jobs alone in the jobs table", (c, n) => {
    const rows = [...document.querySelectorAll("#jobs-table tr.job-row")];
    return rows.length === n && rows.every((r) => r.dataset.state === "dead" && r.textContent.includes(c));
  }, env("BAD_COURSE"), run.jobs.dead);
  check("the jobs filter by course shows the broken course's jobs, all dead", true);
}

async function deadRows(page, course) {
  return page.$$eval('#dead-table tr.dead-row', (rs, c) => rs.filter((r) => r.dataset.courseId === c).map((r) => ({
    job: r.dataset.jobId,
    reason: r.querySelector('[data-field="last_error"]').textContent,
    cls: r.querySelector('[data-field="error_class"]').textContent,
  })), course);
}

async function phaseDead(page) {
  const course = env("BAD_COURSE");
  const n = Number(env("EXPECT_DEAD"));
  await login(page, env("WEB_USER"), env("WEB_PASSWORD"));
  await go(page, "#/dead", "#dead-view");
  await until(page, n + " dead jobs of " + course + " listed", (c, n) => document.querySelectorAll('#dead-table tr.dead-row[data-course-id="' + c + '"]').length === n, course, n);
  const rows = await deadRows(page, course);
  check(n + " dead jobs of " + course + " are listed", rows.length === n);
  check("each with its reason", rows.every((r) => /GRADER must be a list/.test(r.reason)), JSON.stringify(rows[0]));
  check("each with its error class, permanent (a bad policy is not retried)", rows.every((r) => r.cls === "permanent"), JSON.stringify(rows[0]));
  await shot(page, "web-dead.png");
}

async function phaseViewer(page) {
  const role = await login(page, env("WEB_USER"), env("WEB_PASSWORD"));
  check("logged in as a viewer", role === "viewer", role);
  const n = Number(env("EXPECT_DEAD"));
  // the release: its dead queue holds the broken course's jobs
  await go(page, "#/releases", "#releases-view");
  await until(page, "the release's dead queue at " + n, (r, n) => {
    const c = document.querySelector('#releases-table tr[data-release="' + r + '"] [data-field="dead.ready"]');
    return c && Number(c.dataset.value) === n;
  }, env("RELEASE"), n);
  check("the releases page shows " + n + " messages in the dead queue", true);
  // the two consumers, by their pids, of the release
  await go(page, "#/consumers", "#consumers-view");
  const pids = env("EXPECT_PIDS").split(" ").map(Number).sort((a, b) => a - b).join(" ");
  await until(page, "the consumers " + pids + " listed", (pids, rel) => {
    const rows = [...document.querySelectorAll("#consumers-table tbody tr")];
    const seen = rows.map((r) => Number(r.dataset.pid)).sort((a, b) => a - b).join(" ");
    return seen === pids && rows.every((r) => r.textContent.includes(rel));
  }, pids, env("RELEASE"));
  check("the consumers page lists both consumers (pids " + pids + ") of the release", true);
  const done = Number(env("EXPECT_DONE"));
  await until(page, "the consumers' jobs done (" + done + ") and failed (" + n + ")", (done, n) => {
    const rows = [...document.querySelectorAll("#consumers-table tbody tr")];
    const sum = (f) => rows.reduce((a, r) => a + Number(r.querySelector('[data-field="' + f + '"]').dataset.value), 0);
    return sum("done") === done && sum("failed") === n;
  }, done, n);
  check("between them they did " + done + " jobs and failed " + n, true);
  await go(page, "#/dead", "#dead-view");
  await waitSel(page, "#dead-table tr.dead-row", "the dead jobs listed");
  check("the viewer sees no replay button", (await page.$("#dead-replay")) === null);
  check("the viewer is told why", (await page.$("#viewer-note")) !== null);
  const hostile = env("HOSTILE");
  check("a reason holding markup is shown as text", (await deadRows(page, env("BAD_COURSE"))).filter((r) => r.reason.includes(hostile)).length === 1, "no row holds it as text");
  const pwned = await page.evaluate(() => ({ img: document.querySelectorAll("#dead-table img").length, b: !!document.getElementById("pwned"), ran: window.__pwned === 1 }));
  check("and never parsed as markup", pwned.img === 0 && !pwned.b && !pwned.ran, JSON.stringify(pwned));
  const ans = await page.evaluate(async (release, course) => {
    const s = await (await fetch("/api/session")).json();
    const r = await fetch("/api/dead/replay", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": s.csrf_token },
      body: JSON.stringify({ confirm: true, release, course }),
    });
    return { status: r.status, body: await r.text(), token: !!s.csrf_token };
  }, env("RELEASE"), env("BAD_COURSE"));
  check("the viewer has a CSRF token", ans.token);
  check("the API refuses the viewer's replay with 403", ans.status === 403, ans.status + " " + ans.body);
}

async function phaseReplay(page) {
  const course = env("BAD_COURSE");
  const n = Number(env("EXPECT_DEAD"));
  // this phase runs without the event stream: the page must fall back to
  // polling and still see the replayed jobs graded
  await page.setRequestInterception(true);
  page.on("request", (r) => (new URL(r.url()).pathname === "/api/events" ? r.abort() : r.continue()));
  const role = await login(page, env("WEB_USER"), env("WEB_PASSWORD"));
  check("logged in as an operator", role === "operator", role);
  await go(page, "#/dead", "#dead-view");
  await page.waitForSelector("#dead-filter-release");
  await select(page, "#dead-filter-release", env("RELEASE"));
  // the listing read with the release: the select shows it before the page
  // has read it, and the redraw that follows replaces every control
  await until(page, "the dead jobs of the release listed", (r) => document.getElementById("dead-view").dataset.listedRelease === r, env("RELEASE"));
  await typeInto(page, "dead-filter-course", course);
  await page.keyboard.press("Enter");
  // the listing read with the course (the broken course's jobs are the only
  // dead ones: their rows alone would not tell that the filter took)
  await until(page, "the dead jobs filtered by course", (r, c, n) => {
    const v = document.getElementById("dead-view");
    const rows = [...document.querySelectorAll("#dead-table tr.dead-row")];
    return v.dataset.listedRelease === r && v.dataset.listedCourse === c && document.getElementById("dead-filter-course").value === c &&
      rows.length === n && rows.every((r) => r.dataset.courseId === c) && Number(document.getElementById("dead-total").dataset.total) === n;
  }, env("RELEASE"), course, n);
  check("the filter by course lists " + n + " jobs of " + course, true);
  // export first: the file downloads, the page says how big it is
  const cdp = await page.createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: env("WORK_DIR") });
  await waitSel(page, "#dead-export:not([disabled])", "the export button enabled");
  await click(page, "#dead-export");
  await waitSel(page, "#confirm-dialog[open]", "the confirmation dialog", { visible: true });
  await click(page, "#confirm-ok");
  await until(page, "the answer to the export", () => /^Export/.test(document.getElementById("action-result").textContent));
  const ex = await page.$eval("#action-result", (e) => ({ ok: e.dataset.ok, text: e.textContent }));
  check("the export succeeded: " + ex.text, ex.ok === "true" && /Exported [\d,]+ bytes/.test(ex.text), ex.text);
  await waitSel(page, "#dead-replay:not([disabled])", "the replay button enabled");
  await click(page, "#dead-replay");
  await waitSel(page, "#confirm-dialog[open]", "the confirmation dialog", { visible: true });
  const text = await page.$eval("#confirm-dialog", (d) => d.textContent);
  check("the page asks for confirmation, naming the course", text.includes(course), text);
  await click(page, "#confirm-ok");
  await until(page, "the answer to the replay", () => /^Replay/.test(document.getElementById("action-result").textContent));
  const res = await page.$eval("#action-result", (e) => ({ ok: e.dataset.ok, text: e.textContent }));
  check("the replay succeeded: " + res.text, res.ok === "true", res.text);
  const m = /Replayed ([\d,]+) jobs/.exec(res.text);
  check("it replayed " + n + " jobs", m && Number(m[1].replace(/,/g, "")) === n, res.text);
  await until(page, "the indicator to say polling", () => document.getElementById("live").dataset.live === "polling");
  check("without the event stream the page says it is polling", true);
  await go(page, "#/runs", "#runs-table");
  const runId = env("RUN_ID");
  await until(page, "the run shown complete by polling", (id) => {
    const row = document.querySelector('#runs-table tr[data-run-id="' + id + '"]');
    if (!row) return false;
    const v = (f) => row.querySelector('[data-field="' + f + '"]').dataset.value;
    return v("state") === "complete" && v("learners_complete") === v("learners_total");
  }, runId);
  check("polling showed the run complete after the replay", true);
}

async function phaseCancel(page) {
  const runId = env("RUN_ID");
  const n = Number(env("EXPECT_JOBS"));
  await login(page, env("WEB_USER"), env("WEB_PASSWORD"));
  await go(page, "#/run/" + runId, "#run-view");
  await waitSel(page, "#cancel-run:not([disabled])", "the cancel button enabled");
  await click(page, "#cancel-run");
  await waitSel(page, "#confirm-dialog[open]", "the confirmation dialog", { visible: true });
  const text = await page.$eval("#confirm-dialog", (d) => d.textContent);
  check("the page asks before canceling, naming the run", text.includes(runId), text);
  await click(page, "#confirm-ok");
  await until(page, "the answer to the cancel", () => /^Cancel/.test(document.getElementById("action-result").textContent));
  const res = await page.$eval("#action-result", (e) => ({ ok: e.dataset.ok, text: e.textContent }));
  check("the cancel succeeded: " + res.text, res.ok === "true" && new RegExp("^Canceled " + n + " jobs").test(res.text), res.text);
  await until(page, "the run shown canceled", () => document.getElementById("run-view").dataset.state === "canceled");
  check("the run page shows the run canceled, its cancel button off", (await page.$("#cancel-run[disabled]")) !== null);
}

async function phaseOutputs(page) {
  const course = env("COURSE");
  const platformUser = env("PLATFORM_USER");
  await login(page, env("WEB_USER"), env("WEB_PASSWORD"));
  await go(page, "#/outputs", "#outputs-view");
  await until(page, "the Outputs view for the mapped platform user", (u) => document.getElementById("outputs-view").dataset.platformUser === u, platformUser);
  check("the Outputs view knows the platform user " + platformUser, true);
  await until(page, "the team's course picked", (c) => {
    const sel = document.getElementById("outputs-course");
    return sel && sel.value === c && document.getElementById("outputs-none") !== null;
  }, course);
  check("the course of the user's team is picked and has no output yet", true);
  // the output's events reach only a page whose event stream is open
  await until(page, "the event stream open", () => document.getElementById("live").dataset.live === "live");
  check("the page follows the event stream", true);
  // a reload would drop this mark: the sealed output must arrive live
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  fs.writeFileSync(path.join(env("WORK_DIR"), "outputs-open"), "");
  await until(page, "an output of the course listed, then sealed", () => {
    const row = document.querySelector("#outputs-table tr.output-row");
    return row && row.dataset.state === "sealed" && /^[0-9a-f]{64}$/.test(row.dataset.sha256) && row.querySelector("button.output-download") !== null;
  });
  const row = await page.$eval("#outputs-table tr.output-row", (r) => ({ id: r.dataset.outputId, sha256: r.dataset.sha256, size: Number(r.dataset.size) }));
  check("the output " + row.id + " is shown sealed", true);
  check("without a reload", await page.evaluate(() => window.__sameDocument === true));
  await until(page, "its output.<id>.ready event shown", (id) => document.querySelector('#outputs-events li[data-output="' + id + '"][data-event="ready"]') !== null, row.id);
  check("the page shows the output's ready event", true);
  const dir = fs.mkdtempSync(path.join(env("WORK_DIR"), "outputs-dl-"));
  const cdp = await page.createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir });
  await click(page, 'button.output-download[data-output-id="' + row.id + '"]');
  await until(page, "the answer to the download", () => /^Download/.test(document.getElementById("action-result").textContent));
  const res = await page.$eval("#action-result", (e) => ({ ok: e.dataset.ok, text: e.textContent }));
  check("the page minted a link: " + res.text, res.ok === "true", res.text);
  // the browser writes NAME.crdownload, then renames it: wait for the file
  const file = path.join(dir, row.id + ".csv");
  const deadline = Date.now() + WAIT_MS;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error("waiting for the download " + file + ": " + fs.readdirSync(dir).join(", "));
    await new Promise((r) => setTimeout(r, 100)); // polling the file system: no event to wait for
  }
  const bytes = fs.readFileSync(file);
  check("the download has the listing's size", bytes.length === row.size, bytes.length + " != " + row.size);
  const sum = crypto.createHash("sha256").update(bytes).digest("hex");
  check("the download has the listing's SHA-256", sum === row.sha256, sum + " != " + row.sha256);
  fs.writeFileSync(path.join(env("WORK_DIR"), "outputs-downloaded"), file + "\n");
  await shot(page, "web-outputs.png");
}

(async () => {
  const phase = process.argv[2];
  const phases = { watch: phaseWatch, dead: phaseDead, viewer: phaseViewer, replay: phaseReplay, cancel: phaseCancel, outputs: phaseOutputs };
  if (!phases[phase]) fail("usage: dashboard.js watch|dead|viewer|replay|cancel|outputs");
  const { browser, page, problems } = await launch();
  try {
    await phases[phase](page);
    check("no script error in the page", problems.length === 0, problems.join("; "));
  } catch (e) {
    let where = "";
    try {
      where = await page.evaluate(() => " (page at " + location.hash + ", view " + document.getElementById("view").dataset.view + ", banner '" + document.getElementById("banner").textContent + "')");
      await page.screenshot({ path: path.join(env("SHOT_DIR"), "failed-" + phase + ".png"), fullPage: true });
    } catch (e2) {
      /* the page is gone */
    }
    e.message += where;
    await browser.close().catch(() => {});
    fail(phase + ": " + e.message + (problems.length ? " (page: " + problems.join("; ") + ")" : ""));
  }
  await browser.close();
})();
