"""Composing an issue: Markdown (+ front matter) → `Issue` → Jinja2/MJML → HTML and text → lint.

Everything here is pure and deterministic except `build`, which ties the
pipeline to a workspace's files: same files in, same bytes out.
"""
