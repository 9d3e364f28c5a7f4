"""Schemathesis hooks for tests/startup/openapi.rs (loaded through
SCHEMATHESIS_HOOKS): tus bodies, `application/offset+octet-stream`, are
bytes as any octet stream is."""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
