"""Schemathesis hooks for scripts/fuzz.sh (loaded through `hooks` in schemathesis.toml).

Every hook here only ever turns a schema-valid value into another schema-valid value, so that
what the schemas cannot say (a check digit, a file that must exist, content that must match its
type) does not make a valid request fail. Values that violate the schema are left alone.
"""
import datetime
import os
import re
import struct
import zlib

import schemathesis

# /chat/sync is a long poll: a valid `timeout` (0-30 s) makes it wait that long when nothing is
# new for the fuzz user, which is nearly always. Valid values above SYNC_TIMEOUT become it.
SYNC_TIMEOUT = 1

# An avatar path must name a file the server stored and still has; fuzz.sh uploads one first.
UPLOAD_URL = os.environ.get("FUZZ_UPLOAD_URL", "")
UPLOAD_PATH = re.compile(r"^/uploads/[0-9]{4}/[0-9]{2}/[a-z0-9]{24}\.[a-z0-9]+$")
IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "gif", "webp"}

ID_NO = re.compile(r"^[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$")
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"


def _png():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


PNG = _png()
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
JPEG = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        b"\xff\xc0\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00\xff\xd9")
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
ZIP = b"PK\x05\x06" + b"\x00" * 18
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 24
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
FILES = {
    "jpg": JPEG, "jpeg": JPEG, "png": PNG, "gif": GIF, "webp": WEBP,
    "amr": b"#!AMR\n\x3c", "aac": b"\xff\xf1\x50\x80\x02\x1f\xfc", "m4a": MP4, "mp4": MP4, "mov": MP4,
    "mp3": b"ID3\x03\x00\x00\x00\x00\x00\x00", "pdf": b"%PDF-1.4\n%%EOF\n", "txt": b"fuzz\n",
    "doc": OLE, "xls": OLE, "ppt": OLE, "docx": ZIP, "xlsx": ZIP, "pptx": ZIP, "zip": ZIP,
}


def _valid_id_number(value):
    """The same region and sequence digits with a real past birth date and the right check digit."""
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    try:
        birth = datetime.date(year, month, day)
    except ValueError:
        birth = datetime.date(year, month, 28)
    if birth > datetime.date.today() - datetime.timedelta(days=1):
        birth = birth.replace(year=1990, day=min(birth.day, 28))
    body = value[:6] + birth.strftime("%Y%m%d") + value[14:17]
    return body + ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11]


def _fix(container, path):
    if not isinstance(container, dict):
        return
    if path == "/chat/sync":
        value = container.get("timeout")
        if isinstance(value, int) and not isinstance(value, bool) and SYNC_TIMEOUT < value <= 30:
            container["timeout"] = SYNC_TIMEOUT
        elif isinstance(value, str) and value.isdigit() and SYNC_TIMEOUT < int(value) <= 30:
            container["timeout"] = str(SYNC_TIMEOUT)
    value = container.get("idNo")
    if isinstance(value, str) and ID_NO.match(value):
        container["idNo"] = _valid_id_number(value)
    value = container.get("headUrl")
    if UPLOAD_URL and isinstance(value, str) and UPLOAD_PATH.match(value):
        container["headUrl"] = UPLOAD_URL
    if path == "/feed/addFeed":
        images = container.get("images")
        if UPLOAD_URL and isinstance(images, str) and images:
            parts = images.split(",")
            if all(UPLOAD_PATH.match(part) and part.rsplit(".", 1)[-1] in IMAGE_EXTENSIONS for part in parts):
                container["images"] = ",".join(UPLOAD_URL for _ in parts)
        # A post needs text or images, which a schema of optional parameters cannot say.
        text = container.get("text")
        blank = text is None or (isinstance(text, str) and text.strip(" \t\r\n") == "")
        if blank and not container.get("images"):
            container["text"] = "fuzz"
    if path == "/chat/uploadImage" and "fileUpload" in container:
        parts = container["fileUpload"]
        # (A single value instead of the array is a schema violation that looks like an array of
        # one on the wire: left alone, its random content is refused.)
        if isinstance(parts, list) and all(isinstance(p, (bytes, str)) for p in parts):
            container["fileUpload"] = [PNG for _ in parts]


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    _fix(case.query, path)
    _fix(case.body, path)
    if path == "/chat/doUploads" and isinstance(case.body, (bytes, str)) and isinstance(case.query, dict):
        ext = case.query.get("fileExt")
        if isinstance(ext, str):
            content = FILES.get(ext.lower().removeprefix("."))
            if content is not None:
                case.body = content
