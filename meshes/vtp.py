"""VTK XML PolyData (``.vtp``) reader and writer for line surfaces.

VTK XML PolyData (``.vtp``): meshio 5 cannot read it, so :func:`read_vtp` parses it with
:mod:`xml.etree`. Supported: ``format="ascii"``; ``format="binary"`` (base64) with
``header_type`` UInt32 or UInt64, uncompressed or ``vtkZLibDataCompressor``; ``format=
"appended"`` with ``encoding="raw"``, same headers and compression; byte order
little or big endian; cells ``Verts``, ``Lines``, ``Polys`` (``Strips`` are ignored).
"""

from __future__ import annotations

import base64
import math
import re
import zlib
from pathlib import Path
from xml.etree import ElementTree

import meshio
import numpy as np

__all__ = ["read_vtp", "write_vtp"]


_VTK_TYPES = {"Int8": "i1", "UInt8": "u1", "Int16": "i2", "UInt16": "u2", "Int32": "i4",
              "UInt32": "u4", "Int64": "i8", "UInt64": "u8", "Float32": "f4", "Float64": "f8"}


def _dtype(name: str, order: str) -> np.dtype:
    if name not in _VTK_TYPES:
        raise ValueError(f"unsupported VTK data type {name!r}")
    return np.dtype(_VTK_TYPES[name]).newbyteorder(order)


def _blocks(header: np.ndarray, data: bytes, compressed: bool) -> bytes:
    if not compressed:
        return data[:int(header[0])]
    nb = int(header[0])
    sizes = header[3:3 + nb].astype(np.int64)
    out, pos = [], 0
    for s in sizes:
        out.append(zlib.decompress(data[pos:pos + s]))
        pos += s
    return b"".join(out)


def _b64_block(text: bytes, htype: np.dtype, compressed: bool) -> bytes:
    """Decode one base64-encoded array (header + data) of the binary/appended formats."""
    hs = htype.itemsize
    if not compressed:
        raw = base64.b64decode(text)
        header = np.frombuffer(raw[:hs], htype)
        return _blocks(header, raw[hs:], False)
    first = np.frombuffer(base64.b64decode(text[:4 * math.ceil(3 * hs / 3)]), htype)
    hlen = 4 * math.ceil((3 + int(first[0])) * hs / 3)
    header = np.frombuffer(base64.b64decode(text[:hlen]), htype)
    return _blocks(header, base64.b64decode(text[hlen:]), True)


def _raw_block(buf: bytes, offset: int, htype: np.dtype, compressed: bool) -> bytes:
    hs = htype.itemsize
    if not compressed:
        n = int(np.frombuffer(buf[offset:offset + hs], htype)[0])
        return buf[offset + hs:offset + hs + n]
    nb = int(np.frombuffer(buf[offset:offset + hs], htype)[0])
    header = np.frombuffer(buf[offset:offset + (3 + nb) * hs], htype)
    return _blocks(header, buf[offset + (3 + nb) * hs:], True)


def read_vtp(path) -> meshio.Mesh:
    """Read a VTK XML PolyData file (``.vtp``; formats in the module docstring).

    Returns
    -------
    meshio.Mesh
        ``points`` (n, 3); cells ``vertex`` / ``line`` (2-point lines; polylines are split into
        segments) / ``triangle`` / ``quad`` / ``polygon``; ``point_data`` with each array shaped
        (n,) or (n, components).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not PolyData or uses an unsupported encoding.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .vtp file at {path}")
    content = path.read_bytes()
    appended = b""
    cut = content.find(b"<AppendedData")
    if cut >= 0:
        start = content.index(b">", cut) + 1
        body = content[start:]
        tag = re.search(rb'encoding="(\w+)"', content[cut:start])
        enc = tag.group(1).decode() if tag else "raw"
        us = body.index(b"_") + 1
        end = body.rfind(b"</AppendedData>")
        appended = body[us:end]
        content = content[:cut] + b"</VTKFile>"
    else:
        enc = "raw"
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as err:
        raise ValueError(f"{path} is not valid VTK XML: {err}") from err
    if root.get("type") != "PolyData":
        raise ValueError(f"{path} holds VTK {root.get('type')!r}, not PolyData")
    order = ">" if root.get("byte_order") == "BigEndian" else "<"
    htype = _dtype(root.get("header_type", "UInt32"), order)
    compressed = root.get("compressor") is not None
    if compressed and "ZLib" not in root.get("compressor", ""):
        raise ValueError(f"{path}: compressor {root.get('compressor')} is not supported "
                         "(only vtkZLibDataCompressor)")

    def array(el) -> np.ndarray:
        dt = _dtype(el.get("type"), order)
        fmt = el.get("format", "ascii")
        if fmt == "ascii":
            a = np.array((el.text or "").split(), dtype=dt)
        elif fmt == "binary":
            a = np.frombuffer(_b64_block((el.text or "").strip().encode(), htype, compressed), dt)
        elif fmt == "appended":
            off = int(el.get("offset", "0"))
            if enc != "raw":
                raise ValueError(f"{path}: appended data with encoding {enc!r} is not "
                                 "supported (only raw)")
            a = np.frombuffer(_raw_block(appended, off, htype, compressed), dt)
        else:
            raise ValueError(f"{path}: DataArray format {fmt!r} is not supported")
        nc = int(el.get("NumberOfComponents", "1"))
        a = a.astype(dt.newbyteorder("="))
        return a.reshape(-1, nc) if nc > 1 else a

    piece = root.find("PolyData/Piece")
    if piece is None:
        raise ValueError(f"{path} has no PolyData/Piece element")
    pts_el = piece.find("Points/DataArray")
    points = array(pts_el).reshape(-1, 3) if pts_el is not None else np.zeros((0, 3))
    cells = []
    for kind in ("Verts", "Lines", "Polys"):
        el = piece.find(kind)
        if el is None:
            continue
        arrays = {d.get("Name"): array(d) for d in el.findall("DataArray")}
        conn = arrays.get("connectivity", np.zeros(0, int)).astype(np.int64)
        offs = arrays.get("offsets", np.zeros(0, int)).astype(np.int64)
        if offs.size == 0:
            continue
        starts = np.concatenate([[0], offs[:-1]])
        sizes = offs - starts
        if kind == "Verts":
            cells.append(("vertex", conn.reshape(-1, 1)))
        elif kind == "Lines":
            segs = [np.stack([conn[s:s + n - 1], conn[s + 1:s + n]], axis=1)
                    for s, n in zip(starts, sizes, strict=True)]
            cells.append(("line", np.concatenate(segs)))
        else:
            for n, ctype in ((3, "triangle"), (4, "quad")):
                sel = sizes == n
                if sel.any():
                    cells.append((ctype, np.stack([conn[s:s + n] for s in starts[sel]])))
            if np.any(sizes > 4):
                raise ValueError(f"{path}: polygons with more than 4 vertices are not supported")
    point_data = {}
    pd = piece.find("PointData")
    if pd is not None:
        for d in pd.findall("DataArray"):
            point_data[d.get("Name")] = array(d)
    return meshio.Mesh(points, cells, point_data=point_data)


def write_vtp(path, points, lines, point_data=None, *, fmt: str = "ascii",
              compress: bool = False) -> None:
    """Write 2-point line cells as VTK XML PolyData (for tests and exports).

    Parameters
    ----------
    path : path-like
    points : (n, 2) or (n, 3) array
    lines : (m, 2) int array
    point_data : dict of name -> (n,) or (n, c) arrays
    fmt : {"ascii", "binary", "appended"}
        ``binary``: inline base64; ``appended``: raw bytes in ``AppendedData``. UInt64 headers.
    compress : bool
        zlib compression (binary and appended formats).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[1] == 2:
        pts = np.hstack([pts, np.zeros((len(pts), 1))])
    lines = np.asarray(lines, dtype=np.int64).reshape(-1, 2)
    arrays = [("Points", None, pts)]
    arrays += [("Lines", "connectivity", lines.reshape(-1)),
               ("Lines", "offsets", 2 * np.arange(1, len(lines) + 1, dtype=np.int64))]
    arrays += [("PointData", k, np.asarray(v)) for k, v in (point_data or {}).items()]
    appended = []
    offset = 0

    def encode(a: np.ndarray) -> bytes:
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        if compress:
            comp = zlib.compress(raw)
            header = np.array([1, len(raw), len(raw), len(comp)], "<u8").tobytes()
            return header + comp
        return np.array([len(raw)], "<u8").tobytes() + raw

    def element(name, a) -> str:
        nonlocal offset
        vtype = {"f": "Float", "i": "Int", "u": "UInt"}[a.dtype.kind] + str(8 * a.dtype.itemsize)
        nc = 1 if a.ndim == 1 else a.shape[1]
        attrs = f'type="{vtype}" NumberOfComponents="{nc}"' + (f' Name="{name}"' if name else "")
        if fmt == "ascii":
            text = " ".join(map(repr, a.reshape(-1).tolist()))
            return f'<DataArray {attrs} format="ascii">{text}</DataArray>'
        blob = encode(a)
        if fmt == "binary":
            if compress:  # header and data are encoded separately
                nh = 8 * 4
                text = base64.b64encode(blob[:nh]) + base64.b64encode(blob[nh:])
            else:
                text = base64.b64encode(blob)
            return f'<DataArray {attrs} format="binary">{text.decode()}</DataArray>'
        if fmt == "appended":
            el = f'<DataArray {attrs} format="appended" offset="{offset}"/>'
            appended.append(blob)
            offset += len(blob)
            return el
        raise ValueError(f"fmt must be 'ascii', 'binary' or 'appended', got {fmt!r}")

    parts = {"Points": [], "Lines": [], "PointData": []}
    for group, name, a in arrays:
        parts[group].append(element(name, a))
    comp = ' compressor="vtkZLibDataCompressor"' if compress and fmt != "ascii" else ""
    head = (f'<?xml version="1.0"?>\n<VTKFile type="PolyData" version="1.0" '
            f'byte_order="LittleEndian" header_type="UInt64"{comp}>\n<PolyData>\n'
            f'<Piece NumberOfPoints="{len(pts)}" NumberOfVerts="0" NumberOfLines="{len(lines)}" '
            f'NumberOfStrips="0" NumberOfPolys="0">\n'
            f'<PointData>{"".join(parts["PointData"])}</PointData>\n'
            f'<Points>{"".join(parts["Points"])}</Points>\n'
            f'<Lines>{"".join(parts["Lines"])}</Lines>\n</Piece>\n</PolyData>\n')
    data = head.encode()
    if fmt == "appended":
        data += b'<AppendedData encoding="raw">\n_' + b"".join(appended) + b"\n</AppendedData>\n"
    data += b"</VTKFile>\n"
    Path(path).write_bytes(data)
