"""Compose benchmark: the whole pipeline on the example issue, and official MJML.

Measures, in one run, the median time of
  - the whole compose: read + parse the Markdown, Jinja2 -> MJML,
    mjml-python -> HTML, premailer inlining, and the text part;
  - each stage on its own, to show where the time goes;
  - the official MJML renderer (npm package `mjml`, in-process in node) on the
    very MJML our template produced, when node and bench/node_modules exist
    (`npm install --prefix bench`).

Usage: .venv/bin/python bench/compose_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mjml import mjml2html

from mailer.compose.render import compose, inlinable_css, inline_css, render_mjml
from mailer.compose.issue import read_issue
from mailer.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent


def median_ms(fn, runs: int) -> float:
    for _ in range(min(20, runs)):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def official_mjml(mjml_source: str, runs: int) -> dict | None:
    node = shutil.which("node")
    if not node or not (BENCH / "node_modules" / "mjml").is_dir():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".mjml", encoding="utf-8", delete=False) as f:
        f.write(mjml_source)
    try:
        out = subprocess.run([node, str(BENCH / "mjml_render.js"), f.name, str(runs)],
                             capture_output=True, text=True, check=True, cwd=BENCH)
    finally:
        Path(f.name).unlink()
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    workspace = Workspace(ROOT)
    settings, templates = workspace.settings, workspace.templates_dir
    path = ROOT / "issues" / "2024-26.md"
    issue = read_issue(path)
    mjml_source = render_mjml(issue, settings, templates)
    html = mjml2html(mjml_source)
    css = inlinable_css(mjml_source)

    whole = median_ms(lambda: compose(read_issue(path), settings, templates), args.runs)
    stages = {
        "read + parse Markdown": median_ms(lambda: read_issue(path), args.runs),
        "Jinja2 -> MJML": median_ms(lambda: render_mjml(issue, settings, templates), args.runs),
        "mjml-python -> HTML": median_ms(lambda: mjml2html(mjml_source), args.runs),
        "premailer inlining": median_ms(lambda: inline_css(html, css), args.runs),
    }
    rendered = compose(issue, settings, templates)
    print(f"python {sys.version.split()[0]}, {args.runs} runs, medians")
    print(f"whole compose (parse -> Jinja -> MJML -> inline -> text): {whole:7.2f} ms"
          f"   HTML {len(rendered.html.encode()) / 1024:.1f} KB")
    for name, ms in stages.items():
        print(f"  {name:<24} {ms:7.3f} ms")
    reference = official_mjml(mjml_source, args.runs)
    if reference is None:
        print("official MJML: skipped (needs node and `npm install --prefix bench`)")
        return
    print(f"official MJML render alone (node, same MJML):            {reference['median_ms']:7.2f} ms")
    print(f"ratio official MJML render / our whole compose: {reference['median_ms'] / whole:.2f}x")
    print(f"ratio official MJML render / mjml-python render: "
          f"{reference['median_ms'] / stages['mjml-python -> HTML']:.1f}x")


if __name__ == "__main__":
    main()
