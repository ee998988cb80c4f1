"""Save → new content visible in the preview page, in headless Chromium.

Runs `mailer preview`'s server on a copy of the example workspace, opens the
page in Debian's Chromium, and saves the issue (then a template) again and
again, each time with a new marker in the title. The clock starts just
before the file is written and stops at the first animation frame in which
the page's email iframe shows the marker, read from the page's own clock
(both clocks are this machine's wall clock). Between saves it waits a
random 100–400 ms, so saves land at every phase of the 50 ms poll.

    .venv/bin/python bench/preview_bench.py [--edits 40]

Not a test: it asserts nothing and pytest does not collect it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer.compose import build  # noqa: E402
from mailer.compose.lint import lint  # noqa: E402
from mailer.web.preview import PreviewServer  # noqa: E402
from mailer.workspace import Workspace  # noqa: E402

from bench.workspace_copy import copy_workspace  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TITLE = "云计算技术追踪 2024 年第二十六期"

# Resolves at the first animation frame whose iframe shows `marker`; the
# answer is that frame's wall-clock time in ms.
VISIBLE = """marker => new Promise(resolve => {
  const look = () => {
    const frame = document.querySelector('#stage iframe.current');
    const doc = frame && frame.contentDocument;
    if (doc && doc.body && doc.body.textContent.includes(marker)) {
      resolve(performance.timeOrigin + performance.now());
    } else {
      requestAnimationFrame(look);
    }
  };
  look();
})"""


def series(page, server, path: Path, edit, count: int, bumps: list[float]) -> list[dict]:
    source = path.read_text(encoding="utf-8")
    results = []
    for n in range(count):
        marker = f"M{n:03d}x{random.randrange(10**6):06d}"
        text = edit(source, marker)
        time.sleep(random.uniform(0.1, 0.4))
        bumps.clear()
        started = time.time() * 1000
        path.write_text(text, encoding="utf-8")
        visible = page.evaluate(VISIBLE, marker)
        data = server.preview.render(None)
        results.append({
            "total": visible - started,
            "detect": (bumps[0] * 1000 - started) if bumps else float("nan"),
            "render": data["render_ms"],
        })
    path.write_text(source, encoding="utf-8")
    return results


def summary(name: str, results: list[dict]) -> str:
    totals = sorted(r["total"] for r in results)
    detect = statistics.median(r["detect"] for r in results)
    render = statistics.median(r["render"] for r in results)
    p90 = totals[int(len(totals) * 0.9) - 1]
    return (f"| {name} | {len(totals)} | **{statistics.median(totals):.0f} ms** | {p90:.0f} ms | "
            f"{totals[0]:.0f}–{totals[-1]:.0f} ms | {detect:.0f} ms | {render:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=40, help="saves per series")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_workspace(REPO, Path(tmp) / "workspace")
        workspace = Workspace(root)
        issue = root / "issues" / "2024-26.md"

        floor = []
        for _ in range(50):
            started = time.perf_counter()
            lint(build.render_issue(Workspace(root), issue))
            floor.append((time.perf_counter() - started) * 1000)

        bumps: list[float] = []
        with PreviewServer(workspace) as server, sync_playwright() as playwright:
            bump = server.preview.bump

            def timed_bump() -> int:
                bumps.append(time.time())
                return bump()

            server.preview.bump = timed_bump
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url)
            page.wait_for_selector("#stage iframe.current")

            issue_edits = series(
                page, server, issue, lambda s, m: s.replace(TITLE, f"{TITLE} {m}", 1), args.edits, bumps)
            template = root / "templates" / "newsletter.mjml.j2"
            template_edits = series(
                page, server, template,
                lambda s, m: s.replace('<p class="masthead">', f'<p class="masthead">{m} ', 1),
                args.edits, bumps)
            page.click("[data-width=phone]")
            page.click("#dark")
            phone_edits = series(
                page, server, issue, lambda s, m: s.replace(TITLE, f"{TITLE} {m}", 1), args.edits, bumps)
            browser.close()

    print(f"Chromium {CHROMIUM}, Python {sys.version.split()[0]}, {args.edits} saves per row")
    print()
    print("| save of | saves | median | p90 | range | detected after | render + lint |")
    print("|---|---|---|---|---|---|---|")
    print(summary("the issue (desktop view)", issue_edits))
    print(summary("the HTML template", template_edits))
    print(summary("the issue (phone, dark view)", phone_edits))
    print()
    print(f"render + lint alone, in process: median {statistics.median(floor):.1f} ms over {len(floor)} runs")


if __name__ == "__main__":
    main()
