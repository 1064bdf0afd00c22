"""File downloads: ``resolve`` with ETag, X-Repo-Commit, X-Linked-* (LFS) and Range."""

from __future__ import annotations

import re

from .answer import Answer, FileBody, HubError
from .store import StoreMixin


class FilesMixin(StoreMixin):
    """``GET``/``HEAD`` ``/<repo>/resolve/<revision>/<path>``."""

    def _resolve_file(self, kind: str, repo_id: str, revision: str, path: str, user, headers) -> Answer:
        with self.lock:
            repo = self._repo(kind, repo_id, user)
            sha = self._resolve(repo, revision)
            blob = repo.commits[sha].files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        out = {
            "ETag": f'"{blob.etag}"',
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if blob.lfs:
            out.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
        start, end, status = 0, blob.size - 1, 200
        match = re.match(r"bytes=(\d*)-(\d*)$", headers.get("Range") or "")
        if match and blob.size:
            start = int(match.group(1) or 0)
            end = min(int(match.group(2)) if match.group(2) else blob.size - 1, blob.size - 1)
            if start > end:
                raise HubError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{blob.size}"})
            status = 206
            out["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        return Answer(status, FileBody(self.objects / blob.sha256, start, max(0, end - start + 1)), out)
