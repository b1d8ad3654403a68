"""SVG parameter space: parse SVGs into differentiable parameters, render, edit and write back.

``from pds.svg import SVGScene`` is the entry point (see :mod:`pds.svg.scene`). Importing
``pds.svg`` itself is light: the scene, the parser (svgelements, tinycss2, defusedxml) and the
rasterizer are imported on first use.

Modules:
    :mod:`pds.svg.scene`: :class:`SVGScene`, the :class:`pds.Renderer` over an SVG document.
    :mod:`pds.svg.parse`: safe XML reading and the document walk, one module per concern
        (supported features and the module map listed there).
    :mod:`pds.svg.geometry`: shape elements as tensors.
    :mod:`pds.svg.style`: CSS cascade, computed style, colours, lengths.
    :mod:`pds.svg.write`: structure-preserving SVG output.
    :mod:`pds.svg.shapes` / :mod:`pds.svg.raster`: the draw list and the differentiable rasterizer
        (flatten, cover, paint, composite, then the layer compositing stage with filters).
    :mod:`pds.svg.image`, :mod:`pds.svg.text`: ``<image>`` from ``data:`` URIs, text as glyph
        outlines.
    :mod:`pds.cli.svg`: the ``pds-svg`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["KINDS", "SVGError", "SVGFeatureWarning", "SVGScene"]

if TYPE_CHECKING:  # pragma: no cover
    from .parse import SVGError, SVGFeatureWarning
    from .scene import KINDS, SVGScene

_LAZY = {"SVGScene": "scene", "KINDS": "scene", "SVGError": "parse", "SVGFeatureWarning": "parse"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
