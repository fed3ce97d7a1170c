"""The README's example runs, and the docs point at files that exist.

The documentation itself is built, warnings as errors, by ``.ci/run`` (see README.md).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"


def test_readme_example_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README.md has no python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["codes"].shape == (1797, 8)
    assert namespace["X_new"].shape == (3, 64)
    assert list(namespace["y_new"]) == [0, 1, 2]


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pytest tests skae -q" in readme and "python3 -m pytest tests skae -q" in ci
    build = "python -m sphinx -W --keep-going -b html docs docs/_build/html"
    assert build in readme
    assert build.replace("python ", "python3 ", 1) in ci


def test_readme_links_exist():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


@pytest.mark.parametrize("script", sorted(EXAMPLES.glob("plot_*.py")), ids=lambda p: p.name)
def test_example_has_a_gallery_title(script):
    text = script.read_text()
    match = re.match(r'"""\n(.+)\n(=+)\n', text)
    assert match, f"{script.name} must start with a docstring whose first line is a title"
    assert len(match.group(2)) >= len(match.group(1))


def _doc_pages():
    """The hand-written .rst pages of docs/ (not the build, nor the generated ones)."""
    for page in DOCS.rglob("*.rst"):
        if not {"_build", "generated", "auto_examples"} & set(page.parts):
            yield page


def test_pages_link_to_examples_that_exist():
    for page in _doc_pages():
        for name in re.findall(r"sphx_glr_auto_examples_(\w+)\.py", page.read_text()):
            assert (EXAMPLES / f"{name}.py").exists(), f"{page.name} links to {name}.py"


def test_every_public_name_is_in_the_api_reference():
    import skae
    import skae.plotting

    api = (DOCS / "api.rst").read_text()
    for name in [*skae.__all__, *skae.plotting.__all__]:
        if not name.startswith("_"):
            assert re.search(rf"^\s+{name}$", api, re.M), name


BENCHMARK_PAGES = DOCS / "benchmarks"


def test_benchmark_pages_cited_in_the_docs_exist():
    # the first two words of every page's name ("aae_ablation", "semi_supervised", ...)
    prefixes = {"_".join(page.stem.split("_")[:2]) for page in BENCHMARK_PAGES.glob("*.md")}
    for page in _doc_pages():
        for name in re.findall(r"``([A-Za-z0-9_\[\]*]+)``", page.read_text()):
            if "_".join(name.split("_")[:2]) in prefixes:
                # a name or a glob of names, with or without the extension
                assert [*BENCHMARK_PAGES.glob(name), *BENCHMARK_PAGES.glob(f"{name}.md")], (
                    f"{page.name} cites {name}, which no page in docs/benchmarks matches")
