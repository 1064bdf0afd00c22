"""Plain Git LFS: the batch endpoint, and the upload (PUT) and verify URLs it hands out."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .answer import Answer, HubError
from .auth import AuthMixin
from .store import URL_PREFIX, StoreMixin


class LfsMixin(StoreMixin, AuthMixin):
    """``<repo>.git/info/lfs/objects/batch``, ``/lfs-upload/<oid>`` and ``/lfs-verify/<repo>``."""

    def _lfs_batch(self, kind: str, repo_id: str, body: bytes, user, base: str) -> Answer:
        with self.lock:
            self._repo(kind, repo_id, user)
        self._require_write(user)
        data = json.loads(body or b"{}")
        objects = []
        for obj in data.get("objects", []):
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not (self.objects / obj["oid"]).exists():
                entry["actions"] = {
                    "upload": {"href": f"{base}/lfs-upload/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{base}/lfs-verify/{URL_PREFIX[kind]}{repo_id}", "header": {}},
                }
            objects.append(entry)
        return Answer(
            body={"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"}
        )

    def _lfs_put(self, oid: str, body: bytes) -> Answer:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256 oid")
        self.store(body, lfs=True)
        return Answer(body=b"")

    def _lfs_verify(self, body: bytes) -> Answer:
        data = json.loads(body or b"{}")
        obj = self.objects / str(data.get("oid"))
        if not obj.exists() or obj.stat().st_size != data.get("size"):
            raise HubError(404, "LFS object not found or wrong size")
        return Answer(body={})
