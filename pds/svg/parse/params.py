"""The optimisable parameters of a document: each knows its kind, tensors, users and how to
write itself back into the kept XML tree.

A parameter is created once per source of a value (one colour declaration, one ``opacity``, one
gradient's stops, one shape's geometry), so ``use`` instances and shared gradients share it;
:attr:`Param.users` holds the indices of the draw items it changes (what selection by id uses).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence
from xml.etree import ElementTree as ET

import torch
from torch import Tensor

from ..geometry import Geometry
from ..style import color_to_hex, set_declaration

__all__ = ["ColorParam", "GeometryParam", "Param", "ScalarParam", "StopsParam"]


# --------------------------------------------------------------------------------------------
# parameters (each knows its kind, tensors, users and how to write itself back)
# --------------------------------------------------------------------------------------------

ElementMap = Callable[[ET.Element], ET.Element]
Formatter = Callable[[float], str]


class Param:
    """A group of leaf tensors of one kind, read from (and written back to) the document."""

    kind = ""

    def __init__(self):
        self.users: set = set()  # indices of the draw items it affects

    def tensors(self) -> List[Tensor]:
        raise NotImplementedError

    def changed(self) -> bool:
        raise NotImplementedError

    def write(self, fmt: Formatter, element_of: ElementMap) -> None:
        raise NotImplementedError

    def project(self) -> None:
        """Clamp to the valid range (called under no_grad)."""


class GeometryParam(Param):
    kind = "points"

    def __init__(self, geometry: Geometry):
        super().__init__()
        self.geometry = geometry

    def tensors(self):
        return self.geometry.tensors()

    def changed(self):
        return self.geometry.changed()

    def write(self, fmt, element_of):
        self.geometry.write(fmt, element_of(self.geometry.element))

    def project(self):
        self.geometry.project()


def _snapshot(t: Tensor) -> Tensor:
    return t.detach().cpu().clone()


class ColorParam(Param):
    """A solid ``fill`` or ``stroke``: ``rgba`` ``(4,)`` straight RGBA, alpha = colour alpha × *-opacity."""

    def __init__(self, kind: str, element: ET.Element, rgba, effective_opacity: float,
                 origins: Dict[str, str], dtype, device):
        super().__init__()
        self.kind = kind  # "fill" or "stroke"
        self.element = element
        self.rgba = torch.tensor(rgba, dtype=dtype, device=device)
        self._orig = _snapshot(self.rgba)
        self.effective_opacity = effective_opacity  # the *-opacity that applies if we write nothing
        self.origins = origins

    def tensors(self):
        return [self.rgba]

    def changed(self):
        return not torch.equal(self.rgba.detach().cpu(), self._orig)

    def write(self, fmt, element_of):
        el = element_of(self.element)
        v = self.rgba.detach().cpu().double().clamp(0, 1).tolist()
        prop = self.kind
        set_declaration(el, prop, color_to_hex(v[:3]), self.origins.get(prop, "attr"))
        if abs(v[3] - self.effective_opacity) > 1e-9 or el.get(prop + "-opacity") is not None:
            set_declaration(el, prop + "-opacity", fmt(v[3]), self.origins.get(prop + "-opacity", "attr"))

    def project(self):
        self.rgba.clamp_(0.0, 1.0)


class ScalarParam(Param):
    """A scalar property of one element: ``opacity`` (kind ``"opacity"``) or ``stroke-width``."""

    def __init__(self, kind: str, element: ET.Element, prop: str, value: float, origin: str, dtype, device,
                 upper: Optional[float] = None):
        super().__init__()
        self.kind = kind
        self.element = element
        self.prop = prop
        self.value = torch.tensor(float(value), dtype=dtype, device=device)
        self._orig = _snapshot(self.value)
        self.origin = origin
        self.upper = upper

    def tensors(self):
        return [self.value]

    def changed(self):
        return not torch.equal(self.value.detach().cpu(), self._orig)

    def write(self, fmt, element_of):
        v = float(self.value.detach().clamp_min(0))
        if self.upper is not None:
            v = min(v, self.upper)
        set_declaration(element_of(self.element), self.prop, fmt(v), self.origin)

    def project(self):
        if self.upper is None:
            self.value.clamp_(min=0.0)
        else:
            self.value.clamp_(0.0, self.upper)


class StopsParam(Param):
    """The stops of one gradient element: ``colors`` ``(K, 4)`` (parameter) and fixed ``offsets``."""

    def __init__(self, kind: str, stops: Sequence[ET.Element], offsets, colors, opacities, origins, dtype, device):
        super().__init__()
        self.kind = kind
        self.stops = list(stops)
        self.offsets = torch.tensor(offsets, dtype=dtype, device=device)
        self.colors = torch.tensor(colors, dtype=dtype, device=device).reshape(-1, 4)
        self._orig = _snapshot(self.colors)
        self.stop_opacities = list(opacities)
        self.origins = origins

    def tensors(self):
        return [self.colors]

    def changed(self):
        return not torch.equal(self.colors.detach().cpu(), self._orig)

    def write(self, fmt, element_of):
        cur = self.colors.detach().cpu().double().clamp(0, 1)
        for k, stop in enumerate(self.stops):
            if torch.equal(self.colors[k].detach().cpu(), self._orig[k]):
                continue
            el = element_of(stop)
            v = cur[k].tolist()
            origins = self.origins[k]
            set_declaration(el, "stop-color", color_to_hex(v[:3]), origins.get("stop-color", "attr"))
            if abs(v[3] - self.stop_opacities[k]) > 1e-9 or el.get("stop-opacity") is not None:
                set_declaration(el, "stop-opacity", fmt(v[3]), origins.get("stop-opacity", "attr"))

    def project(self):
        self.colors.clamp_(0.0, 1.0)
