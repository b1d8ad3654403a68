"""Safe XML reading: SVG text, bytes or a file into the ElementTree the rest of the parser keeps.

XML is read with **defusedxml** (``forbid_entities``, ``forbid_external``: no entity expansion, so
no "billion laughs", and no external entities or DTD fetches); files are read with a size cap
(:data:`pds.svg.parse.limits.limits.MAX_FILE_BYTES`).  Comments, processing instructions and namespace
declarations are kept, so :mod:`pds.svg.write` can write the same document back.  The errors
every part of the parser raises are defined here too.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import List, Optional, Tuple, Union
from xml.etree import ElementTree as ET

from ..style import SVG_NS, local_name, namespace
from . import limits

__all__ = ["SVGError", "SVGFeatureWarning", "read_xml"]


class SVGError(ValueError):
    """An SVG that cannot be read at all (not XML, unsafe XML, unreadable file...).

    The message is one line meant for users.
    """


class SVGFeatureWarning(UserWarning):
    """An SVG feature the parser skips (one warning per kind and document)."""


def id_text(el: ET.Element) -> str:
    """`` id="x"`` for messages, or nothing."""
    i = el.get("id")
    return f' id="{i[:40]}"' if i else ""


# --------------------------------------------------------------------------------------------
# safe XML
# --------------------------------------------------------------------------------------------

class _TreeBuilder(ET.TreeBuilder):
    """Keeps comments and processing instructions and records namespace declarations.

    Comments and processing instructions outside the root element (a licence or generator
    comment before ``<svg>``), which ElementTree has no place for, are collected in
    :attr:`outside` as ``(after_root, node)``.
    """

    def __init__(self):
        super().__init__(insert_comments=True, insert_pis=True)
        self.namespaces: List[Tuple[str, str]] = []
        self.outside: List[Tuple[bool, ET.Element]] = []
        self._depth = 0
        self._root_done = False

    def start_ns(self, prefix, uri):  # called by XMLParser for every xmlns declaration
        self.namespaces.append((prefix or "", uri))

    def start(self, tag, attrs):
        self._depth += 1
        return super().start(tag, attrs)

    def end(self, tag):
        self._depth -= 1
        self._root_done = self._root_done or self._depth == 0
        return super().end(tag)

    def comment(self, text):
        if self._depth == 0:
            self.outside.append((self._root_done, ET.Comment(text)))
        return super().comment(text)

    def pi(self, target, text=None):
        if self._depth == 0:
            self.outside.append((self._root_done, ET.PI(target, text)))
        return super().pi(target, text)


def _is_svg_text(source) -> bool:
    return isinstance(source, str) and source.lstrip().startswith("<")


def read_xml(source: Union[str, bytes, PathLike],
             outside: Optional[list] = None) -> Tuple[ET.Element, List[Tuple[str, str]]]:
    """Parse SVG text or a file safely.

    Args:
        source: SVG text (a ``str`` starting with ``<``, or ``bytes``) or a file path.
        outside: if given, a list that receives the comments and processing instructions
            outside the root element, in document order, as ``(after_root, node)``.

    Returns:
        ``(root, namespaces)``: the root element and the ``(prefix, uri)`` declarations in
        document order (``""`` for the default namespace).

    Raises:
        SVGError: unreadable file, malformed XML, entity declarations (XML bombs), external
            entities, or a root element that is not ``<svg>``.
    """
    from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
    from defusedxml.ElementTree import DefusedXMLParser

    if isinstance(source, (bytes, bytearray)):
        data: Union[str, bytes] = bytes(source)
        name = "SVG data"
    elif _is_svg_text(source):
        data = source
        name = "SVG text"
    else:
        path = Path(source)
        name = str(path)
        from ...util.files import InputError, read_capped

        try:
            # capped while reading: devices and FIFOs report size 0 (/dev/zero would never end)
            data = read_capped(path, limits.MAX_FILE_BYTES, "SVG")
        except InputError as e:
            raise SVGError(str(e)) from None
        except IsADirectoryError:
            raise SVGError(f"cannot read {name}: it is a directory") from None
        except FileNotFoundError:
            raise SVGError(f"cannot read {name}: no such file") from None
        except PermissionError:
            raise SVGError(f"cannot read {name}: permission denied") from None
        except OSError as e:
            raise SVGError(f"cannot read {name}: {e.strerror or e}") from None
        except ValueError as e:  # a NUL character: no file can have that name (nor is it SVG text)
            raise SVGError(f"cannot read {name[:80]!r}: not SVG text and not a file name ({e})") from None
    if not data or not (data.strip() if isinstance(data, (str, bytes)) else data):
        raise SVGError(f"{name} is empty, not an SVG document")
    builder = _TreeBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        root = parser.close()
    except EntitiesForbidden:
        raise SVGError(f"refusing {name}: it declares XML entities (possible 'billion laughs' bomb)") from None
    except ExternalReferenceForbidden:
        raise SVGError(f"refusing {name}: it references external entities") from None
    except DTDForbidden:  # pragma: no cover - DTDs are allowed, kept for completeness
        raise SVGError(f"refusing {name}: it has a DTD") from None
    except ET.ParseError as e:
        raise SVGError(f"{name} is not well-formed XML: {e}") from None
    except (ValueError, UnicodeError) as e:
        raise SVGError(f"{name} cannot be decoded as XML: {e}") from None
    except LookupError as e:  # encoding="x-klingon": Python knows no such codec
        raise SVGError(f"{name} declares an unknown character encoding ({e}); save it as UTF-8") from None
    if local_name(root.tag) != "svg" or namespace(root.tag) not in (SVG_NS, None):
        raise SVGError(f"{name} is XML but not SVG: the root element is <{local_name(root.tag) or root.tag}>")
    if outside is not None:
        outside.extend(builder.outside)
    return root, builder.namespaces
