"""Upload validation and decoding: every bad input becomes an :class:`InputError` (a 4xx with a message).

The content is sniffed by decoding it with Pillow (never by the file name), the format must be in a
whitelist, the pixel count is checked from the header *before* any pixel is decoded (decompression-bomb
guard), EXIF orientation is applied, and every colour mode (L, LA, P, RGBA, CMYK, I;16, ...) becomes RGB.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Pillow format names accepted (content sniffed, not the extension)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
#: default decompression-bomb guard: 40 megapixels (a 50-megapixel PNG is refused)
DEFAULT_MAX_PIXELS = 40_000_000
#: white background used to flatten transparency
_BACKGROUND = (255, 255, 255)


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
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        notes.append(f"{mode} scaled to 8-bit grey")
        return Image.fromarray(scaled.round().astype(np.uint8), "L").convert("RGB")
    notes.append(f"converted from {mode} to RGB")
    return im.convert("RGB")


def decode_image(data: bytes, *, filename: str = "", max_pixels: int = DEFAULT_MAX_PIXELS,
                 allowed_formats=ALLOWED_FORMATS) -> DecodedImage:
    """Decode ``data`` or raise :class:`InputError` naming what is wrong with ``filename``."""
    label = repr(filename) if filename else "the upload"
    if not data:
        raise InputError(400, "empty_file", f"{label} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and above 2x its limit raises) for huge images; we check our own cap below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError,
            ImportError) as exc:
        # ImportError: once ultralytics is loaded (the YOLO clothing detector), it wraps PIL's Image.open and,
        # on an unidentified image, tries to import pi_heif (not installed) before giving up: same meaning
        raise InputError(415, "not_an_image",
                         f"{label} is not a decodable image ({type(exc).__name__}); "
                         f"accepted formats: {', '.join(allowed_formats)}") from None
    with im:
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
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InputError(400, "corrupt_image",
                             f"{label} looks like {fmt} but cannot be decoded: {exc}") from None
    if orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} applied")
    if array.ndim != 3 or array.shape[2] != 3:
        raise InputError(400, "corrupt_image", f"{label} decoded to an unexpected shape {array.shape}")
    return DecodedImage(np.ascontiguousarray(array), fmt, original_mode,
                        None if orientation is None else int(orientation), filename, notes)
