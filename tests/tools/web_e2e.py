#!/usr/bin/env python3
"""Drives headless Chromium (Debian's, through Playwright) over every page of
Sundial's web UI served at --base, checking each page shows the job's data as
the JSON API reports it, that links navigate (portal -> job, workers pager,
lineage parent/child), and that no page logs a console error, throws, or
loads anything that fails. Writes a PNG of the job page to --out/job.png.

Exit 0 when every check held; otherwise 1 with the failed checks on stderr.
Used by tests/web_e2e.rs; needs `pip install playwright` (no Playwright
browser download: --chromium names the browser).
"""
import argparse
import json
import math
import re
import sys
import tempfile
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 20_000


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT[/prefix]: the page's root")
    ap.add_argument("--token", help="the server wants this token: the page must ask for it once")
    ap.add_argument("--job", default="demo_job")
    ap.add_argument("--out", required=True, help="directory for job.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--wide-job", help="a job of many workers: paged, header sticks while scrolling")
    ap.add_argument("--live-job", help="a job still RUNNING: its page must follow the SSE stream")
    a = ap.parse_args()
    base, job = a.base.rstrip("/"), a.job
    prefix = urllib.parse.urlparse(base).path  # "" or "/solstice"
    q = urllib.parse.quote
    headers = {"Authorization": f"Bearer {a.token}"} if a.token else {}

    def api(path):
        req = urllib.request.Request(f"{base}/api{path}", headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    J = f"/jobs/{q(job)}"
    problems = []  # console errors, page errors, failed loads

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=a.chromium, headless=True, args=FLAGS,
            viewport={"width": 1440, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        # A fetch cut short by the test's own next navigation is ERR_ABORTED;
        # any other failure counts.
        page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
                and problems.append(f"request failed: {r.url} {r.failure}"))
        requested = []
        page.on("request", lambda r: requested.append(r.url))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
        app = page.locator("#app")

        def visit(path, *texts):
            page.goto(base + path)
            for t in texts:
                expect(app).to_contain_text(str(t))
            print(f"web_e2e: {path} shows {len(texts)} expected texts", flush=True)

        # With a token: the page asks once, keeps it for the session (every
        # later page load below passes without asking), never in a URL.
        if a.token:
            page.goto(base + "/")
            form = page.locator("form.login")
            expect(form).to_be_visible()
            form.locator("input[name=token]").fill(a.token)
            form.get_by_role("button", name="Open").click()
            expect(app).to_contain_text(job)
            print("web_e2e: asked for the token once", flush=True)

        # Portal: the job, its status; the link leads to the job page.
        jobs = api("/jobs")["items"]
        me = next(j for j in jobs if j["job_id"] == job)
        visit("/", job, me["status"], me["attempt_id"])
        app.get_by_role("link", name=job, exact=True).click()
        expect(page).to_have_url(base + J)

        # Job page: every stage, the DAG with one node per stage, two charts.
        jv = api(J)
        stages = api(f"{J}/stages?page_size=1000")["items"]
        expect(app).to_contain_text(jv["attempt_id"])
        for s in stages:
            expect(app.locator("table").first).to_contain_text(s["stage_id"])
            expect(app.locator("table").first).to_contain_text(s["operator_type"])
        expect(page.locator("svg.dag g.node")).to_have_count(len(stages))
        expect(page.locator("svg.chart path[stroke-width='1.5']").first).to_be_visible()
        expect(page.locator(".kpis")).to_contain_text(f"{jv['total_input_records']:,}")
        shot = f"{a.out}/job.png"
        page.screenshot(path=shot, full_page=True)
        print(f"web_e2e: screenshot {shot}", flush=True)
        # A DAG node opens its stage.
        page.locator(f"svg.dag g.node[data-stage='{stages[-1]['stage_id']}']").click()
        expect(page).to_have_url(f"{base}{J}/stages/{q(stages[-1]['stage_id'])}")

        # Stage page: operator, partitions, its workers.
        st = stages[0]
        sw = api(f"{J}/stages/{q(st['stage_id'])}/workers?page_size=50")["items"]
        visit(f"{J}/stages/{q(st['stage_id'])}", st["operator_type"], "Partitions", *[w["worker_id"] for w in sw[:3]])

        # Workers: page 1 and 2 of 10, sticky headers.
        p1 = api(f"{J}/workers?page_size=10")
        p2 = api(f"{J}/workers?page_size=10&page=2")
        pages = math.ceil(p1["total"] / 10)
        assert pages >= 2, f"the demo has {p1['total']} workers: too few to page"
        visit(f"{J}/workers?page_size=10", f"Page 1 of {pages}", *[w["worker_id"] for w in p1["items"]])
        sticky = page.locator("#app th").first.evaluate("th => getComputedStyle(th).position")
        if sticky != "sticky":
            problems.append(f"workers table header is position:{sticky}, not sticky")
        page.get_by_title("next page").click()
        expect(app).to_contain_text(f"Page 2 of {pages}")
        for w in p2["items"]:
            expect(app).to_contain_text(w["worker_id"])
        expect(page).to_have_url(re.compile(r"/workers\?(.*&)?page=2(&|$)"))

        # Worker detail: its event history, event by event.
        summary = api(f"{J}/exceptions/summary")
        wid = summary["groups"][0]["workers"][0]
        wv = api(f"{J}/workers/{q(wid)}")
        assert wv["events"], f"worker {wid} has no events"
        visit(f"{J}/workers/{q(wid)}", wid, "Event history", *[e["event"] for e in wv["events"]],
              *[e["detail"] for e in wv["events"] if e.get("detail")])

        # Exceptions: each group, with a line of its stack trace.
        texts = []
        for g in summary["groups"]:
            line = next(l for l in g["sample_stacktrace"].splitlines() if l.strip().startswith("File "))
            texts += [g["exception_type"], g["normalized_message"], f"×{g['count']}", line.strip()]
        visit(f"{J}/exceptions", *texts)

        # Lineage: a split that has both parents and children, then to a
        # child and back up to its parent, by clicking.
        mid = next(s for s in api(f"{J}/lineage?page_size=1000")["items"] if s["parents"] and s["children"])
        visit(f"{J}/lineage?stage_id={q(mid['stage_id'])}", mid["stage_id"])
        visit(f"{J}/lineage/{q(mid['split_id'])}", mid["split_id"], *mid["parents"], *mid["children"])
        child = mid["children"][0]
        app.get_by_role("link", name=child, exact=True).click()
        expect(page).to_have_url(f"{base}{J}/lineage/{q(child)}")
        expect(app).to_contain_text(f"Split {child}")
        app.get_by_role("link", name=mid["split_id"], exact=True).click()
        expect(page).to_have_url(f"{base}{J}/lineage/{q(mid['split_id'])}")
        parent = mid["parents"][0]
        app.get_by_role("link", name=parent, exact=True).click()
        expect(app).to_contain_text(f"Split {parent}")
        print("web_e2e: lineage navigates split -> child -> split -> parent", flush=True)

        # Checkpoints: counts, a failure reason.
        c = api(f"{J}/checkpoints")
        failed = [x["failure_reason"] for x in c["history"] if x["failure_reason"]]
        visit(f"{J}/checkpoints", "Latest completed", str(c["latest_completed_id"]), *failed[:2])
        expect(page.locator(".kpis")).to_contain_text(str(c["count"]))
        expect(page.locator("svg[aria-label='checkpoint durations'] rect")).to_have_count(len(c["history"]))

        # Timeline: the first page's events.
        t = api(f"{J}/timeline?page_size=100")["items"]
        visit(f"{J}/timeline", *[e["source_id"] for e in t[:10]])
        expect(page.locator("svg[aria-label='timeline'] circle")).to_have_count(len(t))

        # Dead letters and configuration.
        d = api(f"{J}/dead-letters?page_size=50")["items"]
        visit(f"{J}/dead-letters", *[x["reason"] for x in d[:3]])
        visit(f"{J}/configuration", *[s["operator_type"] for s in stages])
        # An attempt picked there is read by every page and kept by the tabs.
        app.get_by_role("link", name=jv["attempt_id"], exact=True).click()
        expect(page).to_have_url(re.compile(r"\?attempt=" + re.escape(jv["attempt_id"]) + "$"))
        expect(app).to_contain_text("attempt " + jv["attempt_id"])
        expect(page.locator("#tabs a", has_text="Workers")).to_have_attribute(
            "href", f"{prefix}{J}/workers?attempt={jv['attempt_id']}")
        # Many workers: 50 a page, the last page reached by the pager, the
        # header row pinned while the table scrolls.
        if a.wide_job:
            W = f"/jobs/{q(a.wide_job)}"
            first = api(f"{W}/workers?page_size=50")
            n = first["total"]
            pages = math.ceil(n / 50)
            last = api(f"{W}/workers?page_size=50&page={pages}")["items"]
            visit(f"{W}/workers", f"Page 1 of {pages}", f"of {n:,} workers", first["items"][-1]["worker_id"])
            page.get_by_title("last page").click()
            expect(app).to_contain_text(f"Page {pages} of {pages}")
            expect(app).to_contain_text(last[-1]["worker_id"])
            visit(f"{W}/workers?page_size=1000", f"of {n:,} workers", first["items"][0]["worker_id"])
            expect(app.locator("tbody tr")).to_have_count(min(n, 1000))
            box = app.locator(".scroll").first
            box.evaluate("e => e.scrollTop = e.scrollHeight / 2")
            top = box.bounding_box()["y"]
            th = app.locator("th").first.bounding_box()["y"]
            if abs(th - top) > 2:
                problems.append(f"header row scrolled away: th at {th}, table box at {top}")
            print(f"web_e2e: {W}/workers pages {n} workers, header sticks", flush=True)

        # A running job: its page subscribes to the stream and receives views.
        if a.live_job:
            L = f"/jobs/{q(a.live_job)}"
            visit("/?status=running", a.live_job, "RUNNING", "Running (1)")
            visit(L, a.live_job, "RUNNING")
            expect(page.locator("#live")).to_be_visible()
            expect(page.locator("body")).to_have_attribute("data-live-updates", re.compile(r"^[1-9]"))
            if f"{base}/api{L}/stream" not in requested:
                problems.append(f"the running job's page never opened /api{L}/stream")
            visit(J, job)  # a finished job: the stream is closed, no live badge
            expect(page.locator("#live")).to_be_hidden()
            print(f"web_e2e: {L} follows /api{L}/stream (live badge, view events)", flush=True)
        if a.token:
            if page.locator("form.login").count():
                problems.append("the page asked for the token again")
            leaked = [u for u in requested if a.token in u]
            if leaked:
                problems.append(f"the token is in URLs: {leaked[:3]}")
        outside = [u for u in requested if not u.startswith(base + "/")]
        if outside:
            problems.append(f"requests outside {base}/: {outside[:5]}")
        ctx.close()

    if problems:
        print("web_e2e: FAILED\n" + "\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print("web_e2e: every page passed, no console errors", flush=True)


if __name__ == "__main__":
    main()
