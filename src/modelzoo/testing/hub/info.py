"""Read-only JSON views of a repo: repo info (with model-card tags), model listing, tree and refs."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .answer import Answer, HubError
from .store import Blob, Repo, StoreMixin


class InfoMixin(StoreMixin):
    """What ``model_info``, ``list_models``, ``list_repo_tree`` and ``list_repo_refs`` read."""

    def _card(self, files: dict[str, Blob]) -> dict | None:
        blob = files.get("README.md")
        if blob is None:
            return None
        text = self.read(blob).decode("utf-8", "replace")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
        if not match:
            return None
        import yaml

        data = yaml.safe_load(match.group(1))
        return data if isinstance(data, dict) else None

    def _info(self, repo: Repo, sha: str) -> dict:
        commit = repo.commits[sha]
        card = self._card(commit.files) or {}
        tags = list(card.get("tags") or [])
        for key, prefix in (("library_name", ""), ("pipeline_tag", ""), ("license", "license:")):
            if card.get(key):
                tags.append(f"{prefix}{card[key]}")
        for key, prefix in (("datasets", "dataset:"), ("base_model", "base_model:")):
            values = card.get(key) or []
            tags += [f"{prefix}{v}" for v in ([values] if isinstance(values, str) else values)]
        siblings = []
        for path, blob in sorted(commit.files.items()):
            entry: dict[str, Any] = {"rfilename": path, "size": blob.size, "blobId": blob.oid}
            if blob.lfs:
                entry["lfs"] = {"size": blob.size, "sha256": blob.sha256, "pointerSize": blob.pointer_size()}
            siblings.append(entry)
        return {
            "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24],
            "id": repo.id,
            "modelId": repo.id,
            "author": repo.id.split("/")[0],
            "sha": sha,
            "lastModified": commit.date,
            "createdAt": repo.created,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "library_name": card.get("library_name"),
            "pipeline_tag": card.get("pipeline_tag"),
            "tags": list(dict.fromkeys(tags)),
            "cardData": card or None,
            "siblings": siblings,
            "spaces": [],
        }

    def _list(self, kind: str, query: dict, user) -> Answer:
        author = (query.get("author") or [None])[0]
        filters = query.get("filter") or []
        search = (query.get("search") or [""])[0]
        limit = int((query.get("limit") or [0])[0] or 0)
        out = []
        with self.lock:
            for (rtype, repo_id), repo in sorted(self.repos.items()):
                if rtype != kind or (repo.private and user is None):
                    continue
                if author and repo_id.split("/")[0] != author:
                    continue
                if search and search.lower() not in repo_id.lower():
                    continue
                info = self._info(repo, repo.branches["main"])
                if any(f not in info["tags"] for f in filters):
                    continue
                info.pop("siblings")
                out.append(info)
        return Answer(body=out[:limit] if limit else out)

    def _tree(self, repo: Repo, revision: str, path: str, query: dict) -> list[dict]:
        commit = repo.commits[self._resolve(repo, revision)]
        recursive = (query.get("recursive") or ["false"])[0].lower() in ("true", "1")
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in commit.files):
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        entries, dirs = [], set()
        for p, blob in sorted(commit.files.items()):
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix) :]
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    dirs.add(prefix + "/".join(parts[:depth]))
            if not recursive and len(parts) > 1:
                continue
            entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": blob.size, "path": p}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size()}
            entries.append(entry)
        folders = [
            {"type": "directory", "oid": hashlib.sha1(f"{commit.sha}:{d}".encode()).hexdigest(), "size": 0, "path": d}
            for d in sorted(dirs)
        ]
        return folders + entries

    def _refs(self, repo: Repo) -> dict:
        return {
            "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo.branches.items()],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags.items()],
            "converts": [],
        }
