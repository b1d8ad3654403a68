"""Write a scene back as SVG, keeping the input document's structure.

The XML tree read by :func:`pds.svg.parse.read_xml` is copied, and only attributes whose
parameters changed since loading are rewritten: path ``d`` (regenerated from the control points
as absolute ``M``/``L``/``Q``/``C``/``Z``), circle/ellipse/rect/line/polyline geometry, ``fill`` and
``stroke`` as ``#rrggbb`` plus ``*-opacity``, ``stroke-width``, ``opacity`` and gradient
``stop-color``/``stop-opacity``. Elements, ids, classes, groups, transforms, comments and every
other attribute are kept. A property declared in a ``style`` attribute (or by a ``<style>``
sheet) is updated inside ``style`` so it keeps precedence; otherwise it becomes a presentation
attribute.
Comments and processing instructions before and after the root element are kept too (each on
its own line).

What changes in an unchanged document is formatting only: an XML declaration
(``<?xml version="1.0" encoding="UTF-8"?>``) is written first, a ``<!DOCTYPE>`` is dropped,
empty elements are written ``<x />``, character references and entities become the characters
(or ElementTree's escapes), attribute quoting is ElementTree's, and white space between the
root and the nodes around it becomes one newline.

Serialisation uses the stdlib ElementTree with the document's own namespace prefixes (the SVG
namespace stays the default one, ``xlink:`` stays ``xlink:``) instead of ElementTree's global
prefix registry, so nothing outside this call is affected.
"""

from __future__ import annotations

import copy
import math

from typing import Dict, List, Tuple
from xml.etree import ElementTree as ET

from ..util.files import atomic_write  # re-exported: the SVG writer's users write through it
from .parse import Document

__all__ = ["atomic_write", "document_to_string", "number_formatter"]

_XML_NS = "http://www.w3.org/XML/1998/namespace"


def number_formatter(user_size: float):
    """A number formatter with enough decimals for the document's coordinate range.

    About 1/10 000 of the drawing's size (6 significant digits for a 24-unit icon), trailing
    zeros stripped, ``-0`` written as ``0``.
    """
    decimals = int(min(8, max(2, 6 - math.ceil(math.log10(max(user_size, 1e-9))))))

    def fmt(v: float) -> str:
        v = float(v)
        if not math.isfinite(v):
            v = 0.0
        s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
        return "0" if s in ("-0", "", "-") else s

    return fmt


def _prefixes(doc_namespaces: List[Tuple[str, str]], root: ET.Element):
    """Prefixes for every namespace in ``root``, taken from the document's own declarations.

    Returns ``(tag_prefix, attr_prefix, declarations)``: uri → prefix for tags (``""`` = default
    namespace), uri → non-empty prefix for attributes (unprefixed attributes are in no
    namespace), and the ``xmlns`` attributes to put on the root.
    """
    tag_prefix: Dict[str, str] = {}
    attr_prefix: Dict[str, str] = {}
    taken: Dict[str, str] = {}  # prefix -> uri
    for prefix, uri in doc_namespaces:
        if uri == _XML_NS or taken.get(prefix, uri) != uri:
            continue
        taken[prefix] = uri
        tag_prefix.setdefault(uri, prefix)
        if prefix:
            attr_prefix.setdefault(uri, prefix)
    n = 0

    def fresh(uri: str) -> str:
        nonlocal n
        while f"ns{n}" in taken:
            n += 1
        taken[f"ns{n}"] = uri
        return f"ns{n}"

    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            uri = el.tag[1:].split("}", 1)[0]
            if uri not in tag_prefix:
                tag_prefix[uri] = attr_prefix.get(uri) or ("" if "" not in taken else fresh(uri))
                if tag_prefix[uri] == "":
                    taken[""] = uri
        for key in el.attrib:
            if key.startswith("{"):
                uri = key[1:].split("}", 1)[0]
                if uri != _XML_NS and uri not in attr_prefix:
                    attr_prefix[uri] = tag_prefix.get(uri) or fresh(uri)
    declarations = {("xmlns" if p == "" else f"xmlns:{p}"): uri for p, uri in taken.items()}
    return tag_prefix, attr_prefix, declarations


def document_to_string(doc: Document, fmt=None) -> str:
    """The document as SVG text with changed parameters written back (the scene is not modified)."""
    root = copy.deepcopy(doc.root)
    mapping = {id(a): b for a, b in zip(doc.root.iter(), root.iter())}

    def element_of(el: ET.Element) -> ET.Element:
        return mapping[id(el)]

    fmt = fmt or number_formatter(doc.user_size)
    for param in doc.params:
        if param.changed():
            param.write(fmt, element_of)

    tag_prefix, attr_prefix, decls = _prefixes(doc.namespaces, root)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            uri, local = el.tag[1:].split("}", 1)
            p = tag_prefix[uri]
            el.tag = f"{p}:{local}" if p else local
        if any(k.startswith("{") for k in el.attrib):
            new = {}
            for k, v in el.attrib.items():
                if k.startswith("{"):
                    uri, local = k[1:].split("}", 1)
                    k = f"{'xml' if uri == _XML_NS else attr_prefix[uri]}:{local}"
                new[k] = v
            el.attrib.clear()
            el.attrib.update(new)
    # declarations first, then the root's own attributes in their original order
    attrs = dict(decls)
    attrs.update({k: v for k, v in root.attrib.items() if k not in decls})
    root.attrib.clear()
    root.attrib.update(attrs)
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    before = "".join(ET.tostring(n, encoding="unicode") + "\n" for after, n in doc.outside if not after)
    after = "".join(ET.tostring(n, encoding="unicode") + "\n" for after, n in doc.outside if after)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + before + body + ("\n" if not body.endswith("\n") else "")
            + after)
