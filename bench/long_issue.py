"""Long issues in the shapes of real Chinese weeklies, for the size and speed figures.

Real weeklies of this kind run to 20–28 KB of Markdown with about forty
images, in one of two shapes:

- ``digest``, the example issue's: sections of numbered items, each a bold
  number and title, the article's link on its own line, a `**摘要:**`
  summary and an image;
- ``weekly``: sections of entries written ``1、[标题](链接)``, each followed
  by an image and a few paragraphs of prose. mailer does not take these as
  items, so every paragraph is a block of its own: the shape that used to
  end far past Gmail's clipping limit.

Only the standard library: the benchmarks and the tests both use it.
"""

from __future__ import annotations

SECTIONS = ("分布式系统", "云计算技术", "大模型技术", "数据库", "技术之外")

# A sentence as long as real summaries' sentences, numbered so that no two
# paragraphs are the same text.
_SENTENCE = ("本文介绍了第 {n} 个系统在大规模集群上的设计与实现，包括调度策略、容错训练、"
             "存储分层、网络拓扑与通信库（NCCL、MPI）的优化，以及在加速器上的性能评估和经验。")


def long_issue(items: int = 40, images: int = 40, shape: str = "digest") -> str:
    """The Markdown of an issue of `items` entries, the first `images` of them with an image."""
    lines = ["# 云计算技术追踪 2024 年第三十期", ""]
    per_section = -(-items // len(SECTIONS))
    n = 0
    for s, section in enumerate(SECTIONS):
        lines += [f"## {section}", ""]
        for k in range(1, per_section + 1):
            if n == items:
                break
            n += 1
            title = f"第 {n} 篇：面向全球规模、抢占式和弹性调度的 AI 基础设施"
            url = f"https://mp.weixin.qq.com/s/{s}x{k:02d}PidXyHOUmVy6yQvZCAXQ{n:03d}"
            image = (f"![第 {n} 篇的架构图](https://mmbiz.qpic.cn/mmbiz_png/{n:03d}"
                     f"ibHq7XhkNcQeVQ8wS0kZr1a2b3c4d5e6f/640?wx_fmt=png)")
            if shape == "digest":
                summary = _SENTENCE.format(n=n * 10) + _SENTENCE.format(n=n * 10 + 1)
                lines += [f"**{k}.** **{title}**", "", url, "", f"**摘要:** {summary}", ""]
                if n <= images:
                    lines += [image, ""]
            else:
                lines += [f"{k}、[{title}]({url})", ""]
                if n <= images:
                    lines += [image, ""]
                for i in range(2):
                    lines += [_SENTENCE.format(n=n * 10 + i), ""]
    return "\n".join(lines)
