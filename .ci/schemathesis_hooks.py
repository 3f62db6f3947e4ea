"""Schemathesis hooks for gensail's CI run (loaded through SCHEMATHESIS_HOOKS).

A raw publish sends a component as `application/wasm`: generate and send it
as the raw bytes schemathesis already knows how to send for octet streams.
"""

import schemathesis

schemathesis.serializer.alias("application/wasm", "application/octet-stream")
