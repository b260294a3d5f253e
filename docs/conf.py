"""Sphinx configuration for the scimsync documentation (built strictly: warnings fail)."""

from __future__ import annotations

from importlib.metadata import version as _version

project = "scimsync"
author = "The scimsync authors"
copyright = "2026, The scimsync authors"
release = _version("scimsync")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "scimsync"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Type hints name classes by their full module path; let autodoc resolve them quietly.
nitpicky = False
