"""Every Python example in the documentation runs, so the docs cannot rot.

Convention (see docs/index.rst's source for a reminder):

- ``.. code-block:: python`` blocks are executed. The blocks of one page run
  in order, in one fresh namespace per page (like the cells of a notebook), in
  a temporary working directory, with one thread and ``torch.manual_seed(0)``.
  Pages keep their examples tiny (a depth-8 student, 16 x 16 images, one epoch
  on 32 images) so that this whole file runs in well under a minute on one core.
- ``.. code-block:: bash`` (or ``console``, ``text``, ``json``...) blocks are
  shown, never run: shell commands, outputs, file listings.
- An RST comment ``.. docs-test: pending <reason>`` on the line(s) just before a
  python block marks an example that needs an API which has not landed yet.
  The page's earlier blocks still run; the test is then skipped with the
  reason, so ``pytest -ra`` lists every pending example. A released version
  has none (:func:`test_no_pending_examples` says so in its skip reason).

``.. testcode::`` is not used: the docs build does not load sphinx.ext.doctest.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch

DOCS = Path(__file__).resolve().parent.parent / "docs"
DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>\S+)[ \t]*$")
PENDING = re.compile(r"^\s*\.\. docs-test: pending\s*(?P<reason>.*)$")


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts)


def extract_blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """``(line, language, code, pending reason)`` for every code block of a page.

    ``line`` is the 1-based line of the directive. The block's body is every
    following line indented deeper than the directive (blank lines included),
    after the directive's ``:option:`` lines, dedented.
    """
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = DIRECTIVE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        indent = len(match["indent"].expandtabs())
        pending = None
        j = start - 1
        while j >= 0 and (lines[j].strip() == "" or PENDING.match(lines[j])):
            found = PENDING.match(lines[j])
            if found:
                pending = found["reason"].strip() or "pending"
            j -= 1
        i += 1
        body: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            body.append(line)
            i += 1
        # Drop the directive's options (":caption: ...") and surrounding blanks.
        while body and (not body[0].strip() or body[0].strip().startswith(":")):
            body.pop(0)
        code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        blocks.append((start + 1, match["lang"], code, pending))
    return blocks


PAGES = [p for p in _pages() if any(b[1] == "python" for b in extract_blocks(p.read_text()))]


def test_docs_have_examples():
    assert PAGES, f"no page under {DOCS} has a python code block"


# Captum's own Saliency (used on the Captum page) warns that it switched on input gradients.
@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # "__main__" so that a page showing a whole script runs it as a script would.
    namespace: dict = {"__name__": "__main__"}
    rel = page.relative_to(DOCS)
    try:
        for line, lang, code, pending in extract_blocks(page.read_text()):
            if lang != "python":
                continue
            if pending is not None:
                pytest.skip(f"{rel}:{line}: example pending ({pending})")
            exec(compile(code, f"docs/{rel}:{line}", "exec"), namespace)  # noqa: S102
    finally:
        torch.set_num_threads(threads)
        import matplotlib.pyplot as plt

        plt.close("all")


def test_no_pending_examples():
    pending = [
        f"{p.relative_to(DOCS)}:{line} ({reason})"
        for p in _pages()
        for line, lang, _, reason in extract_blocks(p.read_text())
        if reason is not None
    ]
    if pending:
        pytest.skip("examples waiting for APIs that have not landed: " + "; ".join(pending))


def test_extract_blocks_reads_options_and_pending():
    text = textwrap.dedent(
        """\
        Title
        =====

        .. code-block:: python
           :caption: one

           x = 1

           y = x + 1

        .. docs-test: pending waiting for captum_akd.cli

        .. code-block:: python

           import captum_akd.cli

        .. code-block:: bash

           make docs
        """
    )
    blocks = extract_blocks(text)
    assert [(b[1], b[3]) for b in blocks] == [
        ("python", None),
        ("python", "waiting for captum_akd.cli"),
        ("bash", None),
    ]
    assert blocks[0][2] == "x = 1\n\ny = x + 1\n"
    assert blocks[2][2] == "make docs\n"


SAMPLE_REPORT = """\
# captum-akd benchmark: cifar10

Command: `python -m benchmarks.run --track cifar10 --out benchmarks/results/cifar10/`
on 2025-01-01; **CPU**, 2 threads. See [the paper](https://www.mdpi.com/1424-8220/21/4/1280).

## Faithfulness and speed

| Method | Insertion ↑ | Deletion ↓ | Images/s ↑ |
|---|---|---|---|
| AKD (ours) | 0.7049 | 0.1211 | 24.3 |
| RISE_N=4000 | 0.7335 | 0.1077 | 0.03 |
| a|b*c | – | – | 1 |

- insertion/deletion with `32` pixels per step
- RISE: N = 4000, s = 7

```bash
python -m benchmarks.run --track cifar10
```

![maps](maps.png)

![missing](nothing.png)

200 evaluation images. ![sanity check](sanity.png)
Spearman correlations above.

| Method |
|---|
"""


def test_benchmark_results_render_as_valid_rst(tmp_path):
    """The docs extension turns a results folder into reStructuredText without warnings."""
    import sys

    from docutils.core import publish_doctree

    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import akd_results
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    results = tmp_path / "results"
    track = results / "cifar10"
    track.mkdir(parents=True)
    (track / "results.md").write_text(SAMPLE_REPORT, encoding="utf-8")
    (track / "maps.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (track / "sanity.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (results / "empty").mkdir()
    generated = tmp_path / "generated"
    text = akd_results.render(results, generated, "/generated")
    assert "Track: cifar10" in text and "empty" not in text
    assert ".. list-table::" in text and "0.7049" in text
    assert "``python -m benchmarks.run --track cifar10 --out benchmarks/results/cifar10/``" in text
    assert (generated / "cifar10" / "maps.png").is_file()
    assert "nothing.png" in text and "figure:: /generated/cifar10/maps.png" in text
    # A figure written inside a paragraph follows the paragraph as a figure.
    assert "figure:: /generated/cifar10/sanity.png" in text and "![" not in text
    assert text.index("Spearman correlations above.") < text.index("sanity.png")
    # A table with a header alone (an older report's) renders as a line, not a broken table.
    assert "(Method: no rows)" in text
    # Any docutils warning (bad table, stray markup) raises here.
    publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 2})
    assert "no recorded benchmark results" in akd_results.render(tmp_path / "none", generated, "/g")
