"""Show the recorded benchmark results of ``benchmarks/results/`` in the docs.

A tiny local Sphinx extension. When the build starts it reads every
``benchmarks/results/<track>/results.md`` (the harness's report: the command
that produced it, tables laid out like the method paper's, figures), turns it
into reStructuredText and writes ``_build/generated/benchmark_results.rst``,
which ``benchmarks.rst`` includes. Figures the report links to are copied next
to it. Without recorded results the include says how to produce them, so the
page never goes stale and never breaks the build.

Only the Markdown the reports use is understood: ``#`` headings, pipe tables,
fenced code, ``![alt](file.png)`` images (on a line of their own or
within a paragraph, which then shows them after it), paragraphs and lists with
```code```, ``**bold**`` and ``[text](url)`` inline. Everything else is
escaped and shown as text.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

# Tracks in the order the benchmarks page discusses them; others follow by name.
TRACK_ORDER = ("synthetic", "cifar10", "imagenet-sample")
REPORT_NAMES = ("results.md", "report.md")
GENERATED = Path("_build") / "generated"
INCLUDE_NAME = "benchmark_results.rst"
# Section adornments below the page's own "=" and "-": track, then report headings.
LEVELS = ("~", "^", '"')

_INLINE = re.compile(r"(`[^`]+`|\*\*[^*]+\*\*|!?\[[^\]]*\]\([^)]+\))")
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)")
_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def escape(text: str) -> str:
    """Plain text with reStructuredText's inline markup characters escaped."""
    for char in ("\\", "*", "`", "_", "|"):
        text = text.replace(char, "\\" + char)
    return text


def inline(text: str) -> str:
    """Markdown inline markup (code, bold, links) as reStructuredText."""
    out = []
    parts = [p for p in _INLINE.split(text) if p]
    for index, part in enumerate(parts):
        if part.startswith("`") and part.endswith("`") and len(part) > 2:
            code = part[1:-1].strip()
            markup = f"``{code}``" if "``" not in code else None
        elif part.startswith("**") and part.endswith("**") and len(part) > 4:
            markup = f"**{escape(part[2:-2].strip())}**"
        elif part.startswith("[") and "](" in part:
            label, url = part[1:-1].split("](", 1)
            markup = f"`{escape(label) or url} <{url}>`__"
        else:
            markup = None
        if markup is None:
            out.append(escape(part))
            continue
        # Inline markup must not touch a word on either side: "\ " joins invisibly.
        before = parts[index - 1][-1:] if index else ""
        after = parts[index + 1][:1] if index + 1 < len(parts) else ""
        if before and (before.isalnum() or before in "`*_"):
            markup = "\\ " + markup
        if after and (after.isalnum() or after in "`*_"):
            markup += "\\ "
        out.append(markup)
    return "".join(out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]


def table(lines: list[str]) -> list[str]:
    """A Markdown pipe table as a ``list-table``."""
    header = _cells(lines[0])
    rows = [_cells(line) for line in lines[2:]]
    if not rows:
        # A list-table needs a body; an older report may hold a header alone.
        return [f"({escape(', '.join(header))}: no rows)", ""]
    width = len(header)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        row = (row + [""] * width)[:width]
        for i, cell in enumerate(row):
            text = inline(cell) if cell else ""
            out.append(f"   {'*' if i == 0 else ' '} - {text}".rstrip())
    out.append("")
    return out


def figure(match: re.Match, folder: Path, images_to: Path, image_uri: str) -> list[str]:
    """A ``figure`` directive for one Markdown image; the file is copied to ``images_to``."""
    source = folder / match["src"]
    if not (source.is_file() and source.suffix.lower() in (".png", ".jpg", ".jpeg", ".svg")):
        return [f"(figure ``{match['src']}`` is not in the results folder)"]
    images_to.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, images_to / source.name)
    return [
        "",
        f".. figure:: {image_uri}/{source.name}",
        f"   :alt: {escape(match['alt']) or source.name}",
        "   :width: 100%",
        "",
        f"   {inline(match['alt']) or source.name}",
        "",
    ]


def _opens_table(lines: list[str], i: int) -> bool:
    """Whether line ``i`` is a table's header (a pipe row above a rule)."""
    return (lines[i].strip().startswith("|") and i + 1 < len(lines)
            and bool(_RULE.match(lines[i + 1])))


def _ends_paragraph(lines: list[str], i: int) -> bool:
    """Whether line ``i`` is blank or opens a code fence, heading or table."""
    stripped = lines[i].strip()
    return not stripped or stripped.startswith(("```", "#")) or _opens_table(lines, i)


def markdown_to_rst(markdown: str, folder: Path, images_to: Path, image_uri: str) -> str:
    """Convert one report; images found in ``folder`` are copied to ``images_to``."""
    lines = markdown.splitlines()
    out: list[str] = []
    pending: list[re.Match] = []  # figures of the paragraph being read, shown after it
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if pending and _ends_paragraph(lines, i):
            for match in pending:
                out += figure(match, folder, images_to, image_uri)
            pending.clear()
        if not stripped:
            out.append("")
            i += 1
        elif stripped.startswith("```"):
            language = stripped[3:].strip() or "text"
            if language not in ("bash", "console", "shell", "sh", "json", "text"):
                language = "text"
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            i += 1
            out += [f".. code-block:: {language}", ""]
            out += [f"   {b}".rstrip() for b in body] or ["   (empty)"]
            out.append("")
        elif stripped.startswith("#"):
            depth = len(stripped) - len(stripped.lstrip("#"))
            title = inline(stripped.lstrip("#").strip())
            if depth == 1:  # the report's own title: the track heading replaces it
                i += 1
                continue
            char = LEVELS[min(depth - 1, len(LEVELS) - 1)]
            out += ["", title, char * max(len(title), 3), ""]
            i += 1
        elif _opens_table(lines, i):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i])
                i += 1
            out += ["", *table(block)]
        else:
            # An image, on a line of its own or within text, becomes a figure after
            # its paragraph.
            pending += _IMAGE.finditer(stripped)
            text = _IMAGE.sub("", stripped).strip()
            if text:
                indent = len(line) - len(line.lstrip())
                out.append(" " * indent + inline(text))
            i += 1
    for match in pending:
        out += figure(match, folder, images_to, image_uri)
    return "\n".join(out).strip("\n") + "\n"


def _tracks(results: Path) -> list[Path]:
    found = [
        d for d in results.iterdir()
        if d.is_dir() and any((d / name).is_file() for name in REPORT_NAMES)
    ] if results.is_dir() else []
    order = {name: i for i, name in enumerate(TRACK_ORDER)}
    return sorted(found, key=lambda d: (order.get(d.name, len(order)), d.name))


def render(results: Path, generated: Path, uri_prefix: str) -> str:
    """The include file's text for every track recorded under ``results``."""
    tracks = _tracks(results)
    if not tracks:
        return (
            ".. note::\n\n"
            "   This checkout holds no recorded benchmark results yet. Run the harness\n"
            "   as shown above; each track writes ``results.md``, ``results.json`` and\n"
            "   its figures to ``benchmarks/results/<track>/``, and the next docs build\n"
            "   shows them here.\n"
        )
    parts = []
    for folder in tracks:
        report = next(folder / name for name in REPORT_NAMES if (folder / name).is_file())
        title = f"Track: {folder.name}"
        body = markdown_to_rst(
            report.read_text(encoding="utf-8"),
            folder,
            generated / folder.name,
            f"{uri_prefix}/{folder.name}",
        )
        source = f"``benchmarks/results/{folder.name}/{report.name}``"
        parts.append(f"{title}\n{'~' * len(title)}\n\nFrom {source}.\n\n{body}")
    return "\n".join(parts)


def generate(app) -> None:
    srcdir = Path(app.srcdir)
    results = srcdir.parent / "benchmarks" / "results"
    generated = srcdir / GENERATED
    if generated.exists():
        shutil.rmtree(generated)
    generated.mkdir(parents=True)
    text = render(results, generated, "/" + GENERATED.as_posix())
    (generated / INCLUDE_NAME).write_text(text, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
