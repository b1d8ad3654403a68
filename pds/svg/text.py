"""``<text>`` and ``<tspan>`` as glyph outlines (fontTools), from fonts installed on this machine.

Fonts: every TrueType/OpenType file under the usual font folders (:data:`FONT_DIRS`) is indexed
once by family, weight, style and width (their ``name``/``OS/2`` tables, read lazily).  A
``font-family`` list is matched in order; the generic families map to DejaVu (``serif`` → DejaVu
Serif, ``sans-serif`` → DejaVu Sans, ``monospace`` → DejaVu Sans Mono); a family that is not
installed falls back to :data:`FALLBACK_FAMILY` (DejaVu Serif) with one warning per family.  No font file
referenced by the SVG (``@font-face``) is ever opened.

Layout (SVG 1.1 §10, the parts icons and labels use): white space collapsed
(``xml:space="default"``), per-character ``x``/``y``/``dx``/``dy`` lists on ``text`` and nested
``tspan`` (the innermost element that has a value for a character wins), horizontal advances
from ``hmtx`` plus pair kerning from the legacy ``kern`` table, ``letter-spacing`` and
``word-spacing``, ``text-anchor`` per text chunk (a chunk starts at every absolute ``x``/``y``).
Not done: complex-script shaping and ligatures (no HarfBuzz), ``textPath``, vertical text,
``textLength``, ``baseline-shift``/``dominant-baseline``, bidi.

The outlines are constants (glyph geometry is not a parameter); colours, stroke widths and
opacities of the text are ordinary parameters written back to the ``text``/``tspan`` that
declares them.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["FALLBACK_FAMILY", "FONT_DIRS", "Face", "GlyphRun", "layout", "match_face", "system_faces"]

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.local/share/fonts"),
             os.path.expanduser("~/.fonts"))
#: Used for every family that is not installed: the face of the initial value ``serif``, as
#: browsers (their default font) and resvg do.
FALLBACK_FAMILY = "DejaVu Serif"
GENERIC = {"serif": "DejaVu Serif", "sans-serif": "DejaVu Sans", "monospace": "DejaVu Sans Mono",
           "cursive": "DejaVu Sans", "fantasy": "DejaVu Sans", "system-ui": "DejaVu Sans"}
#: At most this many font files are indexed (a machine with a huge font collection stays fast).
MAX_FONT_FILES = 4000


@dataclass(frozen=True)
class Face:
    """One installed font face."""

    path: str
    family: str  # lower case
    weight: int  # 100..900
    italic: bool
    width: int  # OS/2 usWidthClass, 5 = normal


@lru_cache(maxsize=None)
def system_faces() -> Tuple[Face, ...]:
    """Every readable ``.ttf``/``.otf`` under :data:`FONT_DIRS` (indexed once per process)."""
    from fontTools.ttLib import TTFont

    faces: List[Face] = []
    count = 0
    for root_dir in FONT_DIRS:
        if not os.path.isdir(root_dir):
            continue
        for dirpath, _dirs, files in os.walk(root_dir):
            for name in sorted(files):
                if not name.lower().endswith((".ttf", ".otf")):
                    continue
                count += 1
                if count > MAX_FONT_FILES:
                    return tuple(faces)
                path = os.path.join(dirpath, name)
                try:
                    with TTFont(path, lazy=True) as font:
                        names = font["name"]
                        fam = names.getDebugName(16) or names.getDebugName(1)
                        os2 = font["OS/2"] if "OS/2" in font else None
                        weight = int(os2.usWeightClass) if os2 is not None else 400
                        italic = bool(os2.fsSelection & 1) if os2 is not None else bool(font["head"].macStyle & 2)
                        width = int(os2.usWidthClass) if os2 is not None else 5
                except Exception:  # noqa: BLE001 - an unreadable font file is skipped
                    continue
                if fam:
                    faces.append(Face(path, fam.strip().lower(), weight, italic, width))
    return tuple(faces)


def match_face(families: Sequence[str], weight: int, italic: bool) -> Tuple[Optional[Face], bool]:
    """The installed face for a ``font-family`` list: ``(face, found)``; ``found`` is ``False``
    when no family in the list is installed and the fallback was used (``face`` is ``None``
    only on a machine without any font)."""
    faces = system_faces()

    def best(family: str) -> Optional[Face]:
        cands = [f for f in faces if f.family == family.lower()]
        if not cands:
            return None
        return min(cands, key=lambda f: (f.italic != italic, abs(f.width - 5), abs(f.weight - weight), f.path))

    for fam in families:
        face = best(GENERIC.get(fam.lower(), fam))
        if face is not None:
            return face, True
    face = best(FALLBACK_FAMILY)
    if face is None and faces:
        face = faces[0]
    return face, False


class _Font:
    """A loaded font: cmap, glyph set, advances and kerning pairs."""

    def __init__(self, path: str):
        from fontTools.ttLib import TTFont

        with open(path, "rb") as f:  # read once: no file handle stays open in the cache
            self.font = TTFont(io.BytesIO(f.read()), lazy=True)
        self.cmap = self.font.getBestCmap() or {}
        self.glyphs = self.font.getGlyphSet()
        self.upm = float(self.font["head"].unitsPerEm)
        self.hmtx = self.font["hmtx"]
        self.kern: Dict[Tuple[str, str], int] = {}
        if "kern" in self.font:
            for table in getattr(self.font["kern"], "kernTables", []):
                pairs = getattr(table, "kernTable", None)
                if pairs and getattr(table, "coverage", 1) & 1:  # horizontal kerning
                    self.kern.update(pairs)

    def glyph(self, ch: str) -> str:
        return self.cmap.get(ord(ch), ".notdef")

    def advance(self, gname: str) -> float:
        try:
            return float(self.hmtx[gname][0])
        except KeyError:
            return 0.0


@lru_cache(maxsize=32)
def load_font(path: str) -> _Font:
    return _Font(path)


def _outline(font: _Font, gname: str, scale: float, x: float, y: float) -> str:
    """Path data of one glyph, font units → user space (y flipped), origin at ``(x, y)``."""
    from fontTools.pens.basePen import BasePen

    parts: List[str] = []

    def p(pt):
        return f"{x + pt[0] * scale:.6g} {y - pt[1] * scale:.6g}"

    class Pen(BasePen):
        def _moveTo(self, pt):
            parts.append("M" + p(pt))

        def _lineTo(self, pt):
            parts.append("L" + p(pt))

        def _curveToOne(self, p1, p2, p3):
            parts.append(f"C{p(p1)} {p(p2)} {p(p3)}")

        def _qCurveToOne(self, p1, p2):
            parts.append(f"Q{p(p1)} {p(p2)}")

        def _closePath(self):
            parts.append("Z")

    if gname in font.glyphs:
        font.glyphs[gname].draw(Pen(font.glyphs))
    return "".join(parts)


@dataclass
class GlyphRun:
    """Characters of one element (``text`` or ``tspan``) with their style and position lists.

    Attributes:
        owner: the element whose style paints these characters.
        chars: the characters (white space already collapsed).
        indices: each character's index in the whole ``text`` (for ``x``/``y``/``dx``/``dy``).
        face: the font face; size: ``font-size`` in user units.
        anchor: ``text-anchor`` of the owner; letter_spacing, word_spacing: user units.
    """

    owner: object
    chars: str
    indices: List[int]
    face: Face
    size: float
    anchor: str
    letter_spacing: float
    word_spacing: float


def layout(runs: Sequence[GlyphRun], positions: Dict[str, Dict[int, float]]) -> Dict[int, Tuple[object, str]]:
    """Place every character and return ``id(owner) → (owner, path data)`` of the glyph outlines.

    Args:
        runs: in document order.
        positions: ``"x"``, ``"y"``, ``"dx"``, ``"dy"`` → character index → value (user units),
            already resolved to the innermost element giving one.
    """
    glyphs: List[Tuple[GlyphRun, _Font, str, float, float, int]] = []  # run, font, glyph, x, y, chunk
    chunks: List[Tuple[float, float, str]] = []  # (start x, end x, anchor)
    px = py = 0.0
    prev: Optional[Tuple[_Font, str]] = None
    for run in runs:
        font = load_font(run.face.path)
        scale = run.size / font.upm
        for ch, i in zip(run.chars, run.indices):
            gname = font.glyph(ch)
            absolute = i in positions["x"] or i in positions["y"]
            if absolute or not chunks:
                if not chunks or absolute:
                    if chunks:
                        chunks[-1] = (chunks[-1][0], px, chunks[-1][2])
                    px = positions["x"].get(i, px)
                    py = positions["y"].get(i, py)
                    chunks.append((px, px, run.anchor))
                prev = None
            elif prev is not None and prev[0] is font:
                px += font.kern.get((prev[1], gname), 0) * scale
            px += positions["dx"].get(i, 0.0)
            py += positions["dy"].get(i, 0.0)
            glyphs.append((run, font, gname, px, py, len(chunks) - 1))
            px += font.advance(gname) * scale + run.letter_spacing + (run.word_spacing if ch == " " else 0.0)
            prev = (font, gname)
    if chunks:
        chunks[-1] = (chunks[-1][0], px, chunks[-1][2])
    out: Dict[int, Tuple[object, List[str]]] = {}
    for run, font, gname, x, y, c in glyphs:
        x0, x1, anchor = chunks[c]
        shift = {"middle": -(x1 - x0) / 2.0, "end": -(x1 - x0)}.get(anchor, 0.0)
        d = _outline(font, gname, run.size / font.upm, x + shift, y)
        if d:
            out.setdefault(id(run.owner), (run.owner, []))[1].append(d)
    return {k: (owner, "".join(ds)) for k, (owner, ds) in out.items()}
