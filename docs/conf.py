"""Sphinx configuration of skae's documentation.

Build (from the repository root; warnings are errors, as in CI)::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The examples in ``examples/`` run during the build (sphinx-gallery) on the CPU with one
torch thread; their figures appear on the gallery pages.
"""

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

# One thread: the examples' small nets run fastest so, and CI machines have 2 busy cores.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import skae  # noqa: E402

HERE = Path(__file__).resolve().parent

project = "skae"
author = "the skae developers"
copyright = f"{datetime.date.today().year}, {author}"
version = release = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from _static: formulas render offline too
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
templates_path = ["_templates"]

# --- API reference: autosummary + numpydoc ----------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
default_role = "literal"

# --- Markdown (the benchmark tables in docs/benchmarks/ are written by benchmarks/*.py) -------
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# --- the examples gallery ---------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skae",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"skae": None},
    "min_reported_time": 1,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
}

# --- HTML -------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"skae {release}"
html_static_path = []
html_theme_options = {
    "source_repository": "",
    "navigation_with_keys": True,
}
html_show_sourcelink = False


# --- generated pages: the command-line help ---------------------------------------------------
def _write_cli_help(app):
    """Write ``python -m skae [command] --help`` to ``docs/generated/cli_*.txt``."""
    out = HERE / "generated"
    out.mkdir(exist_ok=True)
    for name, args in (("main", []), ("demo", ["demo"]), ("benchmark", ["benchmark"])):
        text = subprocess.run(
            [sys.executable, "-m", "skae", *args, "--help"], capture_output=True, text=True,
            check=True, env={**os.environ, "COLUMNS": "90"},
        ).stdout
        path = out / f"cli_{name}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


# --- API pages: only skae's own members, and types written as code ----------------------------
def _skip_sklearn_members(app, what, name, obj, skip, options):
    """Leave out members that scikit-learn defines (get_params, set_output, set_*_request...):
    their docstrings point into scikit-learn's own documentation."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.split(".")[0] == "sklearn":
        return True
    return None


# an identifier ending in "_" (a fitted attribute) or starting with "*", in a type description
_ATTRIBUTE = re.compile(r"(?<![`\w*])(\*[A-Za-z]\w*|[A-Za-z]\w*_)(?![`\w])")
_PARAM_LINE = re.compile(r"^(\s*[\w*][\w*, ]* : )(.+)$")


def _quote_attributes_in_types(app, what, name, obj, options, lines):
    """``(n_samples, *input_shape_)`` in a numpydoc type would be read as emphasis and a
    link target by reST; write such names as code instead, as scikit-learn's docstrings do."""
    for i, line in enumerate(lines):
        match = _PARAM_LINE.match(line)
        if match:
            lines[i] = match.group(1) + _ATTRIBUTE.sub(r"`\1`", match.group(2))


# --- generated pages: the list of benchmark tables ---------------------------------------------
def _write_benchmark_list(app):
    """A toctree of ``docs/benchmarks/*.md`` (written by the benchmark scripts), or a note."""
    pages = sorted(p.stem for p in (HERE / "benchmarks").glob("*.md"))
    if pages:
        text = ".. toctree::\n   :maxdepth: 1\n\n" + "".join(
            f"   benchmarks/{page}\n" for page in pages)
    else:
        text = "No benchmark results have been recorded yet.\n"
    out = HERE / "generated"
    out.mkdir(exist_ok=True)
    path = out / "benchmark_list.rst.inc"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def setup(app):
    app.connect("builder-inited", _write_cli_help)
    app.connect("builder-inited", _write_benchmark_list)
    app.connect("autodoc-skip-member", _skip_sklearn_members)
    app.connect("autodoc-process-docstring", _quote_attributes_in_types, priority=400)
