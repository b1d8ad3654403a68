"""CSS side of SVG: property cascade, colours, lengths and number lists.

SVG styling is CSS: a property can come from a presentation attribute (``fill="red"``), from a
``<style>`` sheet or from the ``style`` attribute, in increasing priority, and some properties
inherit down the tree. This module resolves that with two maintained CSS libraries that cairosvg
itself depends on: ``tinycss2`` (tokenising declarations and sheets, CSS colour syntax) and, only
when a document has a ``<style>`` element, ``cssselect2`` (matching selectors against
ElementTree elements).

It also holds the computed-style step the parser applies per element (:func:`computed_style`:
inheritance, ``inherit``, relative ``font-size``) and remembers which element declared each value,
so that optimised values are written back where they take effect (:func:`value_owner`).

Everything here is pure and tensor-free; :mod:`pds.svg.parse` builds the scene from it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

import tinycss2

try:  # CSS Color 4 (space-separated rgb(), hsl, ...): tinycss2 >= 1.3
    from tinycss2 import color4 as _color_module
except ImportError:  # pragma: no cover - older tinycss2
    from tinycss2 import color3 as _color_module

__all__ = [
    "DEFAULTS",
    "INHERITED",
    "PROPERTIES",
    "Declared",
    "Stylesheet",
    "computed_style",
    "declarations",
    "local_name",
    "parse_color",
    "parse_length",
    "parse_numbers",
    "parse_opacity",
    "set_declaration",
    "style_value",
    "value_owner",
]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

#: Properties that inherit from the parent element when not declared (SVG 1.1 property index).
INHERITED = frozenset(
    {
        "fill", "fill-opacity", "fill-rule", "stroke", "stroke-opacity", "stroke-width",
        "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
        "stroke-dashoffset", "color", "visibility", "clip-rule", "paint-order", "marker",
        "marker-start", "marker-mid", "marker-end", "font-size", "color-interpolation-filters",
        "image-rendering", "font-family", "font-weight", "font-style", "text-anchor", "letter-spacing",
        "word-spacing",
    }
)

#: Every property the parser looks at (presentation attribute or CSS declaration).
PROPERTIES = INHERITED | frozenset(
    {
        "opacity", "display", "stop-color", "stop-opacity", "clip-path", "mask", "filter",
        "mix-blend-mode", "overflow", "transform-origin", "mask-type", "isolation", "flood-color",
        "flood-opacity",
    }
)

#: Initial values (SVG 1.1 / CSS).
DEFAULTS: Dict[str, str] = {
    "fill": "black",
    "fill-opacity": "1",
    "fill-rule": "nonzero",
    "stroke": "none",
    "stroke-opacity": "1",
    "stroke-width": "1",
    "stroke-linecap": "butt",
    "stroke-linejoin": "miter",
    "stroke-miterlimit": "4",
    "stroke-dasharray": "none",
    "stroke-dashoffset": "0",
    "clip-rule": "nonzero",
    "color": "black",
    "visibility": "visible",
    "opacity": "1",
    "display": "inline",
    "stop-color": "black",
    "stop-opacity": "1",
    "clip-path": "none",
    "mask": "none",
    "filter": "none",
    "paint-order": "normal",
    "marker": "none",
    "marker-start": "none",
    "marker-mid": "none",
    "marker-end": "none",
    "mix-blend-mode": "normal",
    "font-size": "16px",
    "font-family": "serif",
    "font-weight": "normal",
    "font-style": "normal",
    "text-anchor": "start",
}


def local_name(tag) -> str:
    """``"{http://www.w3.org/2000/svg}rect"`` → ``"rect"``; comments/PIs → ``""``."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def namespace(tag) -> Optional[str]:
    """The namespace URI of an ElementTree tag, ``None`` when it has none."""
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].split("}", 1)[0]
    return None


# --------------------------------------------------------------------------------------------
# numbers, lengths, opacities
# --------------------------------------------------------------------------------------------

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_LENGTH_RE = re.compile(rf"^\s*({_NUMBER})\s*(px|pt|pc|mm|cm|in|em|ex|rem|%)?\s*$", re.IGNORECASE)

#: User units (CSS px at 96 dpi) per unit.
UNIT_PX = {
    None: 1.0, "px": 1.0, "pt": 96.0 / 72.0, "pc": 16.0, "mm": 96.0 / 25.4, "cm": 96.0 / 2.54,
    "in": 96.0,
}


def parse_numbers(text: Optional[str]) -> List[float]:
    """All numbers in a whitespace/comma separated list (``points``, ``viewBox``...)."""
    if not text:
        return []
    return [float(m) for m in _NUMBER_RE.findall(text)]


def parse_length(text, reference: float = 100.0, font_size: float = 16.0, default: Optional[float] = None):
    """A CSS length in user units.

    Args:
        text: e.g. ``"2"``, ``"3px"``, ``"1.5mm"``, ``"50%"``.
        reference: what ``100%`` is (viewport width, height or normalised diagonal).
        font_size: the ``em`` size in user units.
        default: returned when ``text`` is missing or invalid.
    """
    if text is None:
        return default
    m = _LENGTH_RE.match(str(text))
    if not m:
        return default
    value, unit = float(m.group(1)), (m.group(2) or "").lower() or None
    if unit == "%":
        return value * reference / 100.0
    if unit in ("em", "rem"):
        return value * font_size
    if unit == "ex":
        return value * font_size / 2.0
    return value * UNIT_PX[unit]


def parse_opacity(text, default: float = 1.0) -> float:
    """``"0.5"`` or ``"50%"`` → 0.5, clamped to ``[0, 1]``."""
    if text is None:
        return default
    s = str(text).strip()
    try:
        v = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        return default
    if math.isnan(v):
        return default
    return min(max(v, 0.0), 1.0)


# --------------------------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------------------------

def parse_color(text: Optional[str], current: Optional[Tuple[float, float, float, float]] = None):
    """A CSS colour as straight RGBA floats in ``[0, 1]``.

    Named colours, ``#rgb``/``#rgba``/``#rrggbb``/``#rrggbbaa``, ``rgb()``/``rgba()`` (comma or
    space syntax, numbers or percentages), ``hsl()``/``hsla()``, ``transparent`` and
    ``currentColor`` (resolved to ``current``). Returns ``None`` for anything else.
    """
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    if s.lower() == "currentcolor":
        return current if current is not None else (0.0, 0.0, 0.0, 1.0)
    try:
        c = _color_module.parse_color(s)
    except Exception:  # noqa: BLE001 - tinycss2 raises assorted errors on odd input
        return None
    if c is None or isinstance(c, str):
        return None
    if hasattr(c, "to"):  # color4.Color
        try:
            rgb = c.to("srgb").coordinates
        except Exception:  # noqa: BLE001
            return None
        a = c.alpha
    else:  # color3.RGBA
        rgb, a = (c.red, c.green, c.blue), c.alpha
    vals = [0.0 if (v is None or math.isnan(v)) else min(max(float(v), 0.0), 1.0) for v in (*rgb, a)]
    return tuple(vals)


def color_to_hex(rgb) -> str:
    """``(r, g, b)`` in ``[0, 1]`` → ``"#rrggbb"``."""
    return "#" + "".join(f"{int(round(min(max(float(v), 0.0), 1.0) * 255)):02x}" for v in rgb[:3])


# --------------------------------------------------------------------------------------------
# declarations and the cascade
# --------------------------------------------------------------------------------------------

def _parse_declarations(text: str) -> List[Tuple[str, str, bool]]:
    out = []
    for decl in tinycss2.parse_declaration_list(text, skip_whitespace=True, skip_comments=True):
        if decl.type != "declaration":
            continue
        value = tinycss2.serialize(decl.value).strip()
        out.append((decl.lower_name, value, bool(decl.important)))
    return out


@dataclass
class Declared:
    """A declared property value and where it came from (``"attr"``, ``"sheet"`` or ``"style"``)."""

    value: str
    origin: str


class Stylesheet:
    """The rules of a document's ``<style>`` elements, matched with cssselect2.

    Only built when the document has a non-empty ``<style>``; selectors cssselect2 cannot compile
    are skipped (and reported through ``unsupported``).
    """

    def __init__(self, root: ET.Element, css_texts: List[str]):
        self.unsupported: List[str] = []
        self._by_element: Dict[int, List[Tuple[tuple, int, str, str, bool]]] = {}
        if not css_texts:
            return
        import cssselect2  # lazy: only documents with <style> need it

        matcher = cssselect2.Matcher()
        order = 0
        for text in css_texts:
            for rule in tinycss2.parse_stylesheet(text, skip_whitespace=True, skip_comments=True):
                if rule.type == "at-rule":
                    self.unsupported.append("@" + rule.lower_at_keyword)
                    continue
                if rule.type != "qualified-rule":
                    continue
                try:
                    selectors = cssselect2.compile_selector_list(rule.prelude)
                except Exception:  # noqa: BLE001 - cssselect2.SelectorError and friends
                    self.unsupported.append("CSS selector " + tinycss2.serialize(rule.prelude).strip())
                    continue
                decls = _parse_declarations(tinycss2.serialize(rule.content))
                for sel in selectors:
                    matcher.add_selector(sel, (order, decls))
                    order += 1
        wrapper = cssselect2.ElementWrapper.from_xml_root(root)
        for el in wrapper.iter_subtree():
            matches = matcher.match(el)
            if not matches:
                continue
            found = []
            for specificity, _order, _pseudo, (rule_order, decls) in matches:
                for name, value, important in decls:
                    found.append((specificity, rule_order, name, value, important))
            found.sort(key=lambda f: (f[4], f[0], f[1]))
            self._by_element[id(el.etree_element)] = found

    def rules_for(self, element: ET.Element):
        return self._by_element.get(id(element), [])


def style_attribute(element: ET.Element) -> List[Tuple[str, str, bool]]:
    text = element.get("style")
    return _parse_declarations(text) if text else []


def declarations(element: ET.Element, sheet: Optional[Stylesheet]) -> Dict[str, Declared]:
    """The element's own declared properties after the cascade.

    Priority (low → high): presentation attributes, ``<style>`` rules by specificity and order,
    the ``style`` attribute, then ``!important`` sheet rules and ``!important`` style declarations.
    """
    out: Dict[str, Declared] = {}
    for name in PROPERTIES:
        v = element.get(name)
        if v is not None:
            out[name] = Declared(v.strip(), "attr")
    important: Dict[str, Declared] = {}
    if sheet is not None:
        for _spec, _order, name, value, imp in sheet.rules_for(element):
            (important if imp else out)[name] = Declared(value, "sheet")
    for name, value, imp in style_attribute(element):
        (important if imp else out)[name] = Declared(value, "style")
    out.update(important)
    return out


# --------------------------------------------------------------------------------------------
# computed style
# --------------------------------------------------------------------------------------------

#: ``url(#id)`` with what follows it (a paint's fallback colour): paint servers, ``clip-path``,
#: ``mask``, markers.
URL_RE = re.compile(r"""^url\(\s*['"]?\s*#([^'")\s]+)\s*['"]?\s*\)\s*(.*)$""", re.DOTALL)

#: CSS ``font-size`` keywords in px (CSS Fonts 4 §2.5, medium = 16px).
FONT_KEYWORDS = {"xx-small": 9.0, "x-small": 10.0, "small": 13.0, "medium": 16.0, "large": 18.0,
                 "x-large": 24.0, "xx-large": 32.0, "xxx-large": 48.0}


def resolve_font_size(text: str, parent: float) -> float:
    """A declared ``font-size`` in px, relative units resolved against the parent's ``parent``."""
    t = text.strip().lower()
    if t in FONT_KEYWORDS:
        return FONT_KEYWORDS[t]
    if t == "larger":
        return parent * 1.2
    if t == "smaller":
        return parent / 1.2
    v = parse_length(t, parent, parent, default=None)
    return parent if v is None or v < 0 else v


def computed_style(el: ET.Element, declared: Dict[str, Declared], parent: Dict, level: int = 0) -> Dict:
    """Computed style of ``el``: property → value, plus ``"@" + property`` → ``(declaring element, level)``.

    Args:
        el: the element.
        declared: its own declarations after the cascade (:func:`declarations`).
        parent: the computed style it inherits from.
        level: the number of ``use`` boundaries above ``el``; it tells :func:`value_owner` whether
            an inherited value crossed a ``use`` (then it is written back on that ``use``).
    """
    style = {k: v for k, v in parent.items() if (k[1:] if k[:1] == "@" else k) in INHERITED}
    for k, d in declared.items():
        v = d.value
        if v.strip().lower() == "inherit":
            for key in (k, "@" + k):
                if key in parent:
                    style[key] = parent[key]
            continue
        if k == "font-size":
            v = f"{resolve_font_size(v, parse_length(parent.get('font-size', '16'), 16.0, default=16.0)):.12g}"
        style[k] = v
        style["@" + k] = (el, level)
    return style


def style_value(style: Dict[str, str], name: str) -> str:
    """A computed property, or its initial value (:data:`DEFAULTS`), stripped."""
    return style.get(name, DEFAULTS.get(name, "")).strip()


def value_owner(el: ET.Element, style: Dict, prop: str, uses: Tuple[ET.Element, ...]) -> ET.Element:
    """Where an optimised ``prop`` of shape ``el`` is written back.

    The shape itself, unless its value is inherited across a ``use`` boundary: then the first
    ``use`` below the declaring element, so that each instance keeps its own value and the
    referenced element stays shared.
    """
    by = style.get("@" + prop)
    level = by[1] if by is not None else 0
    return el if level >= len(uses) else uses[level]


def set_declaration(element: ET.Element, name: str, value: str, origin: str = "attr") -> None:
    """Write a property back where it will take effect and keep the element's own style.

    When the ``style`` attribute (or a sheet rule) declares ``name`` the value goes into the
    ``style`` attribute (which outranks presentation attributes); otherwise it becomes a
    presentation attribute.
    """
    decls = style_attribute(element)
    in_style = any(n == name for n, _v, _i in decls)
    if in_style or origin in ("style", "sheet"):
        text = element.get("style") or ""
        parts = [p for p in (s.strip() for s in text.split(";")) if p]
        new_parts, done = [], False
        for p in parts:
            key = p.split(":", 1)[0].strip().lower()
            if key == name:
                if not done:
                    new_parts.append(f"{name}:{value}")
                    done = True
                continue
            new_parts.append(p)
        if not done:
            new_parts.append(f"{name}:{value}")
        element.set("style", ";".join(new_parts))
        if element.get(name) is not None:
            element.set(name, value)
    else:
        element.set(name, value)
