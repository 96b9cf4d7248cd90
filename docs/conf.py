"""Sphinx configuration for the captum-akd documentation.

The build needs no network: cross-references into Captum's and PyTorch's
documentation are plain links (no intersphinx inventory is fetched), and the
pipeline figure in ``_static/`` is committed (``python docs/make_figures.py``
redraws it).
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

from captum_akd import __version__  # noqa: E402

project = "captum-akd"
author = "the captum-akd developers"
copyright = "2025, the captum-akd developers"  # noqa: A001
version = __version__
release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "akd_results",  # docs/_ext: recorded benchmark results into benchmarks.rst
]

# Google-style docstrings, as Captum writes them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
napoleon_use_rtype = False
napoleon_use_ivar = True

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"members": True, "show-inheritance": True}
# A forward() without its own docstring would otherwise show torch.nn.Module's.
autodoc_inherit_docstrings = False
# Optional extras are not needed to build the docs.
autodoc_mock_imports: list[str] = []

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"captum-akd {release}"
nitpicky = False
# MathJax is loaded by the reader's browser; the build itself stays offline.
