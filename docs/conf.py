"""Sphinx configuration: the API reference is generated from the docstrings (autodoc).

Build (offline, warnings are errors, well under a minute):

    pip install -r docs/requirements.txt
    sphinx-build -W --keep-going -b html docs build/docs

annfast must be importable: installed (`pip install .`) or built in place
(`python setup.py build_ext --inplace`), in which case the checkout is put on sys.path below.
"""
import os
import sys

try:
    import annfast
except ImportError:  # an in-place build: import it from the checkout
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
    import annfast

project = "annfast"
author = "the annfast authors"
copyright = "2026, the annfast authors"
release = annfast.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["build", "_build"]
root_doc = "index"

autodoc_member_order = "bysource"
autodoc_typehints = "description"   # hints in the parameter lists, signatures stay readable
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_numpy_docstring = True
napoleon_google_docstring = False

html_theme = "alabaster"
html_static_path = []

# ---- docstring conventions that plain reST would misread --------------------------------------
import re

# scikit-learn's fitted attributes end in "_" (coefs_, classes_), which reST takes for a link to
# a target of that name: show them as literals (outside existing ``literals`` only).
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w`*])([A-Za-z]\w*_)(?![\w`*])")


def _quote_fitted_attributes(app, what, name, obj, options, lines):
    parts = "\n".join(lines).split("``")  # a literal may wrap onto the next line
    parts[::2] = [_TRAILING_UNDERSCORE.sub(r"``\1``", p) for p in parts[::2]]
    lines[:] = "``".join(parts).split("\n")


def _skip_generated(app, what, name, obj, skip, options):
    # scikit-learn generates set_*_request methods (metadata routing) whose docstrings point
    # into scikit-learn's own documentation
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _quote_fitted_attributes)
    app.connect("autodoc-skip-member", _skip_generated)
