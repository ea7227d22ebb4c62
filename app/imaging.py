"""Upload validation and decoding: every bad input becomes an :class:`InputError` (a 4xx with a message).

The content is sniffed by decoding it with Pillow (never by the file name), the format must be in a
whitelist, the pixel count is checked from the header *before* any pixel is decoded (decompression-bomb
guard), EXIF orientation is applied, and every colour mode (L, LA, P, RGBA, CMYK, I;16, ...) becomes RGB.

Files are opened with Pillow's own ``Image.open`` (:data:`pillow_open`), captured so that a process-wide
replacement (ultralytics swaps ``PIL.Image.open`` for a wrapper that tries to install/import ``pi_heif``
on an unidentified file) never decides how an upload is read or what its error says.

:func:`probe` reads only the header (format, size: every cheap check) so a request can be refused before
it waits for a model; :func:`decode_image` decodes the pixels, and the app calls it only while holding a
model copy (``app.engine.Service.predict``), which bounds the memory of concurrent decodes.
"""
from __future__ import annotations

import base64
import io
import math
import re
import warnings
from dataclasses import dataclass, field
from struct import error as struct_error

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Pillow format names accepted (content sniffed, not the extension)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
#: default decompression-bomb guard: 40 megapixels (a 50-megapixel PNG is refused)
DEFAULT_MAX_PIXELS = 40_000_000
#: white background used to flatten transparency
_BACKGROUND = (255, 255, 255)
#: images (and person crops) more elongated than this are padded to it before a detector sees them: the
#: detectors' resizes give a 0-pixel side for e.g. a 1x4000 image (torchvision: aspect > max_size)
MAX_ASPECT = 20.0
#: grey used for that padding (the YOLO letterbox value)
PAD_VALUE = 114


def _original_pillow_open():
    """``PIL.Image.open`` as Pillow defines it, even when something replaced it process-wide before us.

    ultralytics (``ultralytics.utils.patches``) sets ``Image.open = image_open`` without ``functools.wraps``,
    keeping Pillow's function in its module global ``_image_open``; other wrappers may set ``__wrapped__``.
    """
    def is_pillows(f) -> bool:  # by its code object: functools.wraps copies names, not code
        code = getattr(f, "__code__", None)
        return code is not None and code.co_name == "open" and code.co_filename == Image.__file__

    fn = Image.open
    for _ in range(8):
        if is_pillows(fn):
            return fn
        inner = getattr(fn, "__wrapped__", None)
        if inner is None:
            candidates = [v for v in getattr(fn, "__globals__", {}).values() if is_pillows(v)]
            inner = candidates[0] if candidates else None
        if inner is None:
            break
        fn = inner
    raise RuntimeError(f"cannot find Pillow's own Image.open behind {Image.open!r}")


#: Pillow's own opener (never a process-wide replacement)
pillow_open = _original_pillow_open()


class InputError(ValueError):
    """A bad upload: ``status`` (4xx), a machine ``code`` and a human ``message``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def to_dict(self) -> dict:
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}


@dataclass
class DecodedImage:
    """An upload decoded to RGB uint8 (H, W, 3) after EXIF orientation."""

    rgb: np.ndarray
    format: str
    original_mode: str
    exif_orientation: int | None
    filename: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def info(self) -> dict:
        return {"width": self.width, "height": self.height, "format": self.format,
                "original_mode": self.original_mode, "exif_orientation": self.exif_orientation,
                "filename": self.filename, "notes": list(self.notes)}


def _to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":
        # palette images may carry transparency: go through RGBA so it is flattened, not dropped
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        notes.append(f"transparency flattened onto white (mode {im.mode})")
        return flat
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # high bit depth grey: scale to 8 bit by the value range instead of clipping
        # (float32, scaled in place: ~4 bytes a pixel instead of float64's 16 in temporaries)
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        if hi <= lo:
            arr = np.zeros(arr.shape, np.uint8)
        else:
            arr -= lo
            arr *= 255.0 / (hi - lo)
            arr = np.rint(arr, out=arr).astype(np.uint8)
        notes.append(f"{mode} scaled to 8-bit grey")
        return Image.fromarray(arr, "L").convert("RGB")
    notes.append(f"converted from {mode} to RGB")
    return im.convert("RGB")


def padded_size(height: int, width: int, max_aspect: float = MAX_ASPECT) -> tuple[int, int]:
    """``(height, width)`` after padding the short side so that long / short ≤ ``max_aspect``."""
    if height * max_aspect < width:
        return math.ceil(width / max_aspect), width
    if width * max_aspect < height:
        return height, math.ceil(height / max_aspect)
    return height, width


def _label(filename: str) -> str:
    return repr(filename) if filename else "the upload"


def _open(data: bytes, label: str, allowed_formats) -> Image.Image:
    """Pillow's opener on ``data`` (header only): every failure becomes an :class:`InputError`."""
    if not data:
        raise InputError(400, "empty_file", f"{label} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and above 2x its limit raises) for huge images; we check our own cap after
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return pillow_open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        # beyond 2x Pillow's own limit Pillow refuses from the header: too many pixels, not "not an image"
        m = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" = {int(m.group(1)) / 1e6:.1f} megapixels" if m else ""
        raise InputError(413, "too_many_pixels",
                         f"{label} declares a decompression-bomb size{size}, beyond Pillow's own limit") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError,
            KeyError, struct_error, ZeroDivisionError, MemoryError) as exc:
        raise InputError(415, "not_an_image",
                         f"{label} is not a decodable image ({type(exc).__name__}); "
                         f"accepted formats: {', '.join(allowed_formats)}") from None


def _check_header(im: Image.Image, label: str, max_pixels: int, allowed_formats) -> None:
    fmt = im.format or "unknown"
    if fmt not in allowed_formats:
        raise InputError(415, "unsupported_format",
                         f"{label} is a {fmt} image; accepted formats: {', '.join(allowed_formats)}")
    width, height = im.size
    if width <= 0 or height <= 0:
        raise InputError(400, "empty_image", f"{label} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(413, "too_many_pixels",
                         f"{label} is {width}x{height} = {width * height / 1e6:.1f} megapixels; "
                         f"the limit is {max_pixels / 1e6:.1f} megapixels")
    ph, pw = padded_size(height, width)
    if ph * pw > max_pixels:
        raise InputError(413, "too_many_pixels",
                         f"{label} is {width}x{height}: padded to the detectors' aspect-ratio limit "
                         f"{MAX_ASPECT:g}:1 it would be {pw}x{ph} = {pw * ph / 1e6:.1f} megapixels; "
                         f"the limit is {max_pixels / 1e6:.1f} megapixels")


def probe(data: bytes, *, filename: str = "", max_pixels: int = DEFAULT_MAX_PIXELS,
          allowed_formats=ALLOWED_FORMATS) -> tuple[str, int, int]:
    """Header checks only (no pixel decoded): ``(format, width, height)`` or :class:`InputError`."""
    label = _label(filename)
    with _open(data, label, allowed_formats) as im:
        _check_header(im, label, max_pixels, allowed_formats)
        return im.format, im.size[0], im.size[1]


def decode_image(data: bytes, *, filename: str = "", max_pixels: int = DEFAULT_MAX_PIXELS,
                 allowed_formats=ALLOWED_FORMATS) -> DecodedImage:
    """Decode ``data`` or raise :class:`InputError` naming what is wrong with ``filename``."""
    label = _label(filename)
    im = _open(data, label, allowed_formats)
    with im:
        fmt = im.format or "unknown"
        _check_header(im, label, max_pixels, allowed_formats)
        if getattr(im, "n_frames", 1) > 1:
            notes = ["multi-frame image: first frame used"]
        else:
            notes = []
        original_mode = im.mode
        try:
            orientation = im.getexif().get(0x0112)
        except Exception:  # a broken EXIF block is not fatal: use the pixels as stored
            orientation = None
            notes.append("unreadable EXIF ignored")
        try:
            im.load()
            oriented = ImageOps.exif_transpose(im) if orientation not in (None, 1) else im
            rgb = _to_rgb(oriented, notes)
            array = np.array(rgb, dtype=np.uint8)  # a writable copy (torch refuses read-only buffers)
        except Image.DecompressionBombError as exc:  # e.g. a frame larger than the header said
            raise InputError(413, "too_many_pixels", f"{label}: {exc}") from None
        except (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, struct_error,
                ZeroDivisionError) as exc:
            raise InputError(400, "corrupt_image",
                             f"{label} looks like {fmt} but cannot be decoded: {hide_paths(str(exc))}") from None
    if orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} applied")
    if array.ndim != 3 or array.shape[2] != 3:
        raise InputError(400, "corrupt_image", f"{label} decoded to an unexpected shape {array.shape}")
    return DecodedImage(np.ascontiguousarray(array), fmt, original_mode,
                        None if orientation is None else int(orientation), filename, notes)


# --------------------------------------------------------------------------- output helpers
def _path_prefixes() -> list[str]:
    import os
    import sys
    import tempfile

    prefixes = {os.path.expanduser("~"), tempfile.gettempdir(), sys.prefix, sys.base_prefix, os.getcwd()}
    try:
        from clothingrec.paths import PROJECT_ROOT

        prefixes.add(str(PROJECT_ROOT))
    except Exception:  # noqa: BLE001 - the library is optional here
        pass
    # longest first, so that the project root wins over a home directory that contains it
    return sorted((p.rstrip("/") for p in prefixes if p and p not in ("/", "")), key=len, reverse=True)


_ABSOLUTE = re.compile(r"(?<![\w.:/-])/(?:[\w.@+-]+/)+[\w.@+-]*")


def hide_paths(text: str) -> str:
    """``text`` without absolute file paths: the project root is dropped (paths become project-relative),
    any other absolute path is shortened to its last component."""
    for prefix in _path_prefixes():
        text = text.replace(prefix + "/", "").replace(prefix, ".")
    return _ABSOLUTE.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or ".", text)


def jpeg_data_url(rgb, quality: int = 85) -> str:
    """The image the models saw (oriented, RGB) as a JPEG data URL, so the page draws boxes on exactly it."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class AspectGuard:
    """A detector (``predict(image) -> Detections``) that never sees an image more elongated than
    ``max_aspect``: such an input is padded (bottom / right, grey) first, and boxes and masks are cut back
    to the input.  Everything else is delegated to the wrapped predictor."""

    def __init__(self, predictor, max_aspect: float = MAX_ASPECT, fill: int = PAD_VALUE):
        self.predictor = predictor
        self.max_aspect = float(max_aspect)
        self.fill = int(fill)

    def __getattr__(self, name):
        if name == "predictor":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def predict(self, image):
        from clothingrec.structures import Detections

        image = np.asarray(image)
        h, w = image.shape[:2]
        ph, pw = padded_size(h, w, self.max_aspect)
        if (ph, pw) == (h, w):
            return self.predictor.predict(image)
        canvas = np.full((ph, pw) + image.shape[2:], self.fill, dtype=image.dtype)
        canvas[:h, :w] = image
        det = self.predictor.predict(canvas)
        del canvas
        boxes = np.asarray(det.boxes_xyxy, dtype=np.float32).copy()
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        keep = np.flatnonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        masks = None if det.masks is None else np.asarray(det.masks)[:, :h, :w]
        return Detections(boxes, det.labels, det.scores, masks).select(keep)
