"""Compose benchmark: the whole pipeline on the example issue, and official MJML.

Measures, in one run, for the example issue and for a long issue generated
in its shape (bench/long_issue.py: 40 items with an image each, 28 KB of
Markdown), the median time of
  - the whole compose: read + parse the Markdown, Jinja2 -> MJML,
    mjml-python -> HTML, CSS inlining (css-inline), and the text part;
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
from mailer.compose.issue import parse_issue
from mailer.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.long_issue import long_issue  # noqa: E402

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


def measure(name: str, source: str, path: Path, settings, templates, runs: int) -> None:
    """Print the whole compose of `source`, its stages, and official MJML on the same MJML."""
    issue = parse_issue(source, path)
    mjml_source = render_mjml(issue, settings, templates)
    html = mjml2html(mjml_source)
    css = inlinable_css(mjml_source)
    whole = median_ms(lambda: compose(parse_issue(source, path), settings, templates), runs)
    stages = {
        "parse Markdown": median_ms(lambda: parse_issue(source, path), runs),
        "Jinja2 -> MJML": median_ms(lambda: render_mjml(issue, settings, templates), runs),
        "mjml-python -> HTML": median_ms(lambda: mjml2html(mjml_source), runs),
        "CSS inlining": median_ms(lambda: inline_css(html, css), runs),
    }
    stages["text part and the rest"] = whole - sum(stages.values())
    rendered = compose(issue, settings, templates)
    print(f"\n{name}: Markdown {len(source.encode()) / 1000:.1f} KB, "
          f"HTML {len(rendered.html.encode()) / 1000:.1f} KB")
    print(f"whole compose (parse -> Jinja -> MJML -> inline -> text): {whole:7.2f} ms")
    for stage, ms in stages.items():
        print(f"  {stage:<24} {ms:7.3f} ms")
    reference = official_mjml(mjml_source, runs)
    if reference is None:
        print("official MJML: skipped (needs node and `npm install --prefix bench`)")
        return
    print(f"official MJML render alone (node, same MJML):            {reference['median_ms']:7.2f} ms")
    print(f"ratio official MJML render / our whole compose: {reference['median_ms'] / whole:.2f}x")
    print(f"ratio official MJML render / mjml-python render: "
          f"{reference['median_ms'] / stages['mjml-python -> HTML']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    workspace = Workspace(ROOT)
    settings, templates = workspace.settings, workspace.templates_dir
    example = ROOT / "issues" / "2024-26.md"
    print(f"python {sys.version.split()[0]}, {args.runs} runs, medians")
    measure("example issue (2024-26)", example.read_text(encoding="utf-8"), example,
            settings, templates, args.runs)
    measure("long issue (40 items, 40 images)", long_issue(), ROOT / "issues" / "long.md",
            settings, templates, max(50, args.runs // 3))


if __name__ == "__main__":
    main()
