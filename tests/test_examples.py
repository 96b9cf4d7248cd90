"""Every example on the public surface runs, and shows what it really prints.

The public names are those ``test_docstrings`` checks (what the package and
its subpackages export, plus every public module's own names, the CLI
included). Each docstring's ``>>>`` lines run as a doctest in a fresh
temporary directory (``../shared`` there points at the project's shared data,
as it does from the project root), with ``torch`` imported and seeded, one
thread. An example whose output cannot be shown exactly is not written.
"""

from __future__ import annotations

import doctest
import inspect
import os
from pathlib import Path

import pytest
import torch
from test_docstrings import _methods, public_names

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _docstrings() -> list[tuple[str, object]]:
    found = []
    for qualname, obj in public_names():
        found.append((qualname, obj))
        if inspect.isclass(obj):
            found += [(f"{qualname}.{name}", method) for name, method, is_property in
                      _methods(obj) if not is_property]
    return [(name, obj) for name, obj in found if ">>>" in (obj.__doc__ or "")]


EXAMPLES = _docstrings()


@pytest.mark.parametrize("qualname, obj", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_runs(qualname, obj, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED)
    monkeypatch.chdir(work)
    module = inspect.getmodule(inspect.unwrap(obj))
    globs = {**vars(module), "torch": torch}
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        test = doctest.DocTestParser().get_doctest(obj.__doc__, globs, qualname,
                                                   module.__file__, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                       | doctest.NORMALIZE_WHITESPACE)
        output: list[str] = []
        runner.run(test, out=output.append)
    finally:
        torch.set_num_threads(threads)
    assert runner.failures == 0, "".join(output)[-4000:]


def test_examples_are_found():
    names = {name for name, _ in EXAMPLES}
    assert "captum_akd.distill._api.distill" in names
    assert "captum_akd.cli.add_distill_arguments" in names
    assert len(names) > 50
    assert os.path.isdir(SHARED), "the shared data the examples read"
