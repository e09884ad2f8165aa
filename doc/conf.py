"""Sphinx configuration of the rnnapprox documentation.

Build (from the repository root)::

    pip install -e ".[docs]"
    sphinx-build -W -b html doc doc/_build/html

The examples gallery runs every ``examples/plot_*.py``; a failing example
fails the build.
"""

import os
import re
import sys
import warnings
from pathlib import Path

# The gallery runs every example in this process. Their matrices are small:
# one BLAS thread is as fast as several on an idle machine and much faster on a
# busy one (CI runners have 2 cores, and numba runs its own threads). Set
# before NumPy and SciPy load their BLAS libraries (and inherited by the
# worker processes of n_jobs=2), and enforced again below once they are loaded.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import scipy.linalg  # noqa: E402, F401  (loads SciPy's own BLAS before the limit below)
from threadpoolctl import threadpool_limits  # noqa: E402

import rnnapprox  # noqa: E402
import rnnapprox.networks  # noqa: E402

threadpool_limits(limits=1, user_api="blas")

project = "rnnapprox"
author = "The rnnapprox developers"
copyright = "The rnnapprox developers, BSD-3-Clause"
release = rnnapprox.__version__
version = re.sub(r"(\.dev\d*|rc\d*|a\d*|b\d*)$", "", release)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # A local copy of MathJax (copied to _static/mathjax): math renders
    # without network access. The module's name has hyphens; Sphinx imports it.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "sg_execution_times.rst",
                    "auto_examples/sg_execution_times.rst"]
root_doc = "index"
default_role = "literal"
# |version| and |release| in the pages come from rnnapprox.__version__.
rst_epilog = f"""
.. |rnnapprox_version| replace:: {release}
"""

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
# The "On this page" list of a class page names its methods (``fit``), not
# ``RecurrentFixedPointTransformer.fit``, which the sidebar would cut off.
toc_object_entries_show_parents = "hide"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Parameter types become cross-references, so shape names such as
# ``n_features_in_`` in a type are code, not RST hyperlink targets.
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "RandomState": "numpy.random.RandomState",
    "Generator": "numpy.random.Generator",
    "RecurrentFixedPointTransformer": "rnnapprox.RecurrentFixedPointTransformer",
    "FeedforwardApproximator": "rnnapprox.FeedforwardApproximator",
    "FixedPointResult": "rnnapprox.FixedPointResult",
    "RateNetwork": "rnnapprox.networks.RateNetwork",
    "GatedNetwork": "rnnapprox.networks.GatedNetwork",
    "FeedbackNetwork": "rnnapprox.networks.FeedbackNetwork",
}
if not os.environ.get("RNNAPPROX_DOCS_INTERSPHINX"):
    # numpydoc's default aliases point into the Python and NumPy inventories
    # (``:class:`python:int```): without intersphinx they do not resolve and
    # render as "python:int". Make every one a plain reference to its own
    # name ("int", "None"), and send array-like to our glossary.
    from numpydoc.xref import DEFAULT_LINKS

    for _name in DEFAULT_LINKS:
        numpydoc_xref_aliases.setdefault(_name, _name)
    numpydoc_xref_aliases["array-like"] = ":term:`array-like`"
    numpydoc_xref_aliases["array_like"] = ":term:`array-like`"
numpydoc_xref_ignore = {
    "of", "shape", "or", "and", "default", "instance", "optional", "array-like",
    "object", "callable", "positive", "non-negative", "complex", "function",
}


_TYPE_LINE = re.compile(r"^(\s*[\w*][\w*, ]* : )(.+)$")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?![`\w])")


def _quote_fitted_names_in_types(app, what, name, obj, options, lines):
    """Quote names ending in ``_`` in parameter types: ``(n_state_,)``.

    In reST a word ending in ``_`` is a hyperlink reference, and numpydoc
    leaves shape tuples such as ``(n_features_in_,)`` untouched; quoted, the
    names render as literals. Runs before numpydoc (priority 400 < 500).
    """
    for i, line in enumerate(lines):
        match = _TYPE_LINE.match(line)
        if match and "shape" in match.group(2):
            lines[i] = match.group(1) + _TRAILING_UNDERSCORE.sub(r"`\1`", match.group(2))


def _skip_member(app, what, name, obj, skip, options):
    """Leave out the metadata-routing setters scikit-learn generates per estimator."""
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None

# -- sphinx-gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # run every plot_*.py: a broken example fails the build
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("rnnapprox",),
    "backreferences_dir": "generated/backreferences",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "min_reported_time": 1,
    "show_memory": False,
    "remove_config_comments": True,
    "capture_repr": (),  # print() output only, not the repr of a cell's last expression
    # No execution-times pages: they load their table scripts from the network.
    "write_computation_times": False,
}

# The examples warn (ConvergenceWarning) on purpose; keep the build log readable.
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

# -- HTML --------------------------------------------------------------------
try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc"],
        # The top bar lists the root toctree's pages (index.rst) in order; the
        # first six stay visible (install ... Muir), the rest go under "More".
        "header_links_before_dropdown": 6,
        "navbar_start": ["navbar-logo", "rnnapprox-version"],
        "navbar_persistent": ["search-button"],
        "navbar_end": ["theme-switcher"],
        "footer_start": ["copyright"],
        "footer_end": ["sphinx-version"],
        "logo": {"text": "rnnapprox"},
    }
except ImportError:  # pragma: no cover - fallback theme
    html_theme = "alabaster"
html_title = f"rnnapprox {release}"
html_static_path = ["_static"]
html_css_files = ["rnnapprox.css"]
html_show_sourcelink = False
# MathJax's SVG output needs no web fonts (fonts from a parent folder are
# blocked for file:// pages in some browsers). The file is the local copy of
# sphinx-mathjax-offline; setup() below sets it after that extension's own.
_MATHJAX_PATH = "mathjax/tex-svg.js"

# -- intersphinx: opt-in, since the build must not depend on the network -----
if os.environ.get("RNNAPPROX_DOCS_INTERSPHINX"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }


# -- every public name is documented -----------------------------------------
def _documented_names():
    """Names listed in the autosummary tables of api.rst, per module."""
    names, module = {}, None
    for line in (HERE / "api.rst").read_text().splitlines():
        match = re.match(r"\.\. currentmodule:: (\S+)", line.strip())
        if match:
            module = match.group(1)
            continue
        match = re.fullmatch(r"\s{3,}~?([A-Za-z_][\w.]*)", line)
        if match and module is not None and not line.strip().startswith(":"):
            names.setdefault(module, set()).add(match.group(1))
    return names


def _check_api_coverage(app):
    from sphinx.util import logging

    logger = logging.getLogger("rnnapprox.api")
    documented = _documented_names()
    import rnnapprox.interop

    skip = {"networks", "feedback", "__version__"}  # the submodules have tables of their own
    for module in (rnnapprox, rnnapprox.networks, rnnapprox.feedback, rnnapprox.interop):
        public = set(module.__all__) - skip
        listed = documented.get(module.__name__, set())
        for name in sorted(public - listed):
            logger.warning(
                f"{module.__name__}.{name} is in __all__ but not in doc/api.rst: "
                "add it to the autosummary table (one line)."
            )
        for name in sorted(listed - public):
            logger.warning(f"doc/api.rst lists {module.__name__}.{name}, which is not in __all__.")


def _hide_empty_section_navigation(app, pagename, templatename, context, doctree):
    """Leave out the left sidebar on a page whose top-level section has no subpages.

    The theme's "Section Navigation" lists the pages under the current
    top-level entry of index.rst; for a single page (install, user guide) it
    would be an empty box. The API reference and the gallery keep theirs.
    """
    env = app.env
    parent = {child: page for page, children in env.toctree_includes.items() for child in children}
    section = pagename
    while parent.get(section) not in (None, app.config.root_doc):
        section = parent[section]
    if section == app.config.root_doc or not env.toctree_includes.get(section):
        context["sidebars"] = []


def setup(app):
    app.config.mathjax_path = _MATHJAX_PATH
    app.connect("builder-inited", _check_api_coverage)
    app.connect("html-page-context", _hide_empty_section_navigation)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _quote_fitted_names_in_types, priority=400)
