"""The JSON API (``/api/...``): whoami, repo create/delete/info/list, tree, refs, commit history,
tags and branches, ``preupload``, ``commit`` (inline base64 files and plain Git LFS) and
``validate-yaml``. No pull requests, no Xet: ``preupload`` answers ``"regular"`` unless
``lfs_threshold`` is set, which is for clients run with ``HF_HUB_DISABLE_XET=1``."""

from __future__ import annotations

import base64
import json
import re

from .answer import Answer, HubError
from .auth import AuthMixin
from .info import InfoMixin
from .store import LFS_POINTER, TYPE_PLURAL, URL_PREFIX, Blob, Repo, git_blob_sha1


class ApiMixin(InfoMixin, AuthMixin):
    """Routes ``/api/...`` requests; repo-level ones run under the lock."""

    def _api(self, method: str, segs: list[str], query: dict, body: bytes, user, base: str) -> Answer:
        if segs == ["whoami-v2"] and method == "GET":
            if user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            role = user[1]
            return Answer(
                body={
                    "type": "user",
                    "name": user[0],
                    "fullname": user[0],
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": role}},
                }
            )
        if segs == ["validate-yaml"] and method == "POST":
            return self._validate_yaml(body)
        if segs == ["repos", "create"] and method == "POST":
            return self._create(json.loads(body or b"{}"), user, base)
        if segs == ["repos", "delete"] and method == "DELETE":
            data = json.loads(body or b"{}")
            self._require_write(user)
            repo_id = f"{data.get('organization') or user[0]}/{data['name']}"
            with self.lock:
                self._repo(data.get("type") or "model", repo_id, user)
                del self.repos[(data.get("type") or "model", repo_id)]
            return Answer(body={})
        if len(segs) == 1 and segs[0] in TYPE_PLURAL and method == "GET":
            return self._list(TYPE_PLURAL[segs[0]], query, user)
        if len(segs) >= 3 and segs[0] in TYPE_PLURAL:
            kind, repo_id, rest = TYPE_PLURAL[segs[0]], f"{segs[1]}/{segs[2]}", segs[3:]
            with self.lock:
                repo = self._repo(kind, repo_id, user)
                return self._repo_api(method, repo, rest, query, body, user, base)
        raise HubError(404, f"no route for {method} /api/{'/'.join(segs)}")

    def _repo_api(self, method: str, repo: Repo, rest: list[str], query, body: bytes, user, base: str) -> Answer:
        if method == "GET" and (not rest or rest[0] == "revision"):
            revision = rest[1] if len(rest) > 1 else "main"
            return Answer(body=self._info(repo, self._resolve(repo, revision)))
        if method == "GET" and rest[:1] == ["tree"] and len(rest) >= 2:
            return Answer(body=self._tree(repo, rest[1], "/".join(rest[2:]), query))
        if method == "GET" and rest == ["refs"]:
            return Answer(body=self._refs(repo))
        if method == "GET" and rest[:1] == ["commits"] and len(rest) == 2:
            sha = self._resolve(repo, rest[1])
            out = []
            while sha:
                c = repo.commits[sha]
                out.append(
                    {
                        "id": c.sha,
                        "title": c.title,
                        "message": c.message,
                        "date": c.date,
                        "authors": [{"user": "tester"}],
                    }
                )
                sha = c.parent
            return Answer(body=out)
        if method == "POST" and rest[:1] == ["preupload"] and len(rest) == 2:
            return self._preupload(repo, rest[1], json.loads(body or b"{}"), user)
        if method == "POST" and rest[:1] == ["commit"] and len(rest) == 2:
            return self._commit(repo, rest[1], body, user, base)
        if rest[:1] == ["tag"] and len(rest) == 2:
            self._require_write(user)
            if method == "POST":
                tag = json.loads(body or b"{}")["tag"]
                if tag in repo.tags or tag in repo.branches:
                    raise HubError(409, f"Tag {tag} already exists")
                repo.tags[tag] = self._resolve(repo, rest[1])
                return Answer(body={})
            if method == "DELETE":
                if repo.tags.pop(rest[1], None) is None:
                    raise HubError(404, f"Invalid rev id: {rest[1]}", "RevisionNotFound")
                return Answer(body={})
        if rest[:1] == ["branch"] and len(rest) == 2:
            self._require_write(user)
            name = rest[1]
            if method == "POST":
                if name in repo.branches:
                    raise HubError(409, f"Branch {name} already exists")
                start = json.loads(body or b"{}").get("startingPoint") or "main"
                repo.branches[name] = self._resolve(repo, start)
                return Answer(body={})
            if method == "DELETE":
                if name == "main" or repo.branches.pop(name, None) is None:
                    raise HubError(404 if name != "main" else 403, f"cannot delete branch {name}", "RevisionNotFound")
                return Answer(body={})
        raise HubError(404, f"no route for {method} .../{'/'.join(rest)}")

    # -- repo endpoints -------------------------------------------------------------------
    def _create(self, data: dict, user, base: str) -> Answer:
        self._require_write(user)
        kind = data.get("type") or "model"
        repo_id = f"{data.get('organization') or user[0]}/{data['name']}"
        url = f"{base}/{URL_PREFIX[kind]}{repo_id}"
        with self.lock:
            if (kind, repo_id) in self.repos:
                return Answer(409, {"error": "You already created this model repo", "url": url})
            private = data.get("visibility") == "private" or bool(data.get("private"))
            self.create_repo(repo_id, kind, private)
        return Answer(200, {"url": url, "name": repo_id})

    def _validate_yaml(self, body: bytes) -> Answer:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        if match:
            import yaml

            try:
                yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                return Answer(400, {"errors": [{"message": str(exc).splitlines()[0]}], "warnings": []})
        return Answer(body={"errors": [], "warnings": []})

    def _preupload(self, repo: Repo, revision: str, data: dict, user) -> Answer:
        self._require_write(user)
        commit = repo.commits[self._resolve(repo, revision)]
        files = []
        for item in data.get("files", []):
            lfs = self.lfs_threshold is not None and int(item.get("size", 0)) >= self.lfs_threshold
            existing = commit.files.get(item["path"])
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
            files.append(
                {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return Answer(body={"files": files, "commitOid": commit.sha})

    def _commit(self, repo: Repo, revision: str, body: bytes, user, base: str) -> Answer:
        self._require_write(user)
        if revision not in repo.branches:
            if revision in repo.tags or revision in repo.commits:
                raise HubError(400, f"cannot commit to {revision}: not a branch")
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        head = repo.branches[revision]
        files = dict(repo.commits[head].files)
        header: dict = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                data = (
                    base64.b64decode(value["content"])
                    if value.get("encoding") == "base64"
                    else value["content"].encode()
                )
                files[value["path"]] = self.store(data)
            elif key == "lfsFile":
                sha = value["oid"]
                obj = self.objects / sha
                if not obj.exists():
                    raise HubError(400, f"LFS object {sha} for {value['path']} was never uploaded")
                size = obj.stat().st_size
                oid = git_blob_sha1(LFS_POINTER.format(sha=sha, size=size).encode())
                files[value["path"]] = Blob(size, sha, oid, True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for p in [p for p in files if p.startswith(prefix)]:
                    del files[p]
            else:
                raise HubError(400, f"unknown commit operation {key}")
        parent = header.get("parentCommit")
        if parent and parent != head:
            raise HubError(412, f"A commit has happened since {parent[:12]}: the branch is now at {head[:12]}")
        sha = self._new_commit(repo, head, files, header.get("summary") or "update", header.get("description") or "")
        repo.branches[revision] = sha
        url = f"{base}/{URL_PREFIX[repo.type]}{repo.id}/commit/{sha}"
        return Answer(body={"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": ""})
