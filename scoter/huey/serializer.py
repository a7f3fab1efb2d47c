"""Huey's serializers (`huey.serializer`): pickle, optionally compressed or signed.

Pickle is the default of the Huey classes only (as in Huey); scoter's own default is JSON.
`SignedSerializer(secret=...)` turns on scoter's HMAC signing of tasks, results and
checkpoints with that key (at least 16 bytes) instead of signing inside the serializer.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from typing import Any

from scoter.exceptions import DecodeError

COMPRESSED_STARTS = (b"\x1f", b"\x78")
"""The first byte of gzip and of zlib data (pickle's is 0x80): what `deserialize` decompresses."""


class Serializer:
    """Pickle, gzip- (or zlib-) compressed when asked; scoter's serializer protocol."""

    def __init__(
        self,
        compression: bool = False,
        compression_level: int = 6,
        use_zlib: bool = False,
        pickle_protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        self.comp = compression
        self.comp_level = compression_level
        self.use_zlib = use_zlib
        self.pickle_protocol = pickle_protocol

    def _serialize(self, data: Any) -> bytes:
        return pickle.dumps(data, self.pickle_protocol)

    def _deserialize(self, data: bytes) -> Any:
        return pickle.loads(data)

    def serialize(self, data: Any) -> bytes:
        raw = self._serialize(data)
        if not self.comp:
            return raw
        if self.use_zlib:
            return zlib.compress(raw, self.comp_level)
        return gzip.compress(raw, self.comp_level)

    def deserialize(self, data: bytes) -> Any:
        """The value of `data`; with compression on, data that is not compressed (written
        before compression was turned on) is read as it is, as Huey does."""
        try:
            if self.comp and data[:1] in COMPRESSED_STARTS:
                data = zlib.decompress(data) if self.use_zlib else gzip.decompress(data)
            return self._deserialize(data)
        except Exception as exc:
            raise DecodeError(f"not a valid Huey payload: {exc}") from exc

    dumps = serialize
    loads = deserialize


class SignedSerializer(Serializer):
    """A Serializer whose Huey signs what it stores with `secret` (scoter's signing)."""

    def __init__(
        self, secret: str | bytes | None = None, salt: str = "huey", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not secret:
            raise ValueError("SignedSerializer needs a secret (at least 16 bytes)")
        self.secret = secret
        self.salt = salt
