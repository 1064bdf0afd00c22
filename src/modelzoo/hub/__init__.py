"""The Hugging Face Hub: push run folders, pull models pinned to commits and verified, lock them.

:mod:`.client` holds the endpoint, token, offline mode and the translation of client errors into one
line; :mod:`.manifest` the sha256 manifest and git blob ids; :mod:`.upload` is ``zoo push``,
:mod:`.download` is ``zoo pull``, :mod:`.lockfile` is ``zoo.lock``, :mod:`.listing` lists an org's
models and backbones, :mod:`.card` writes the model card and :mod:`.backbones` turns any Hub checkpoint a
plugin knows the format of (``hf-hub:ORG/NAME[@REV]``) into a backbone spec pinned to a commit.

Why it looks like this:


* **The real client does the protocol.** ``huggingface_hub`` (HfApi, create_commit, snapshot_download,
  the HF cache) talks to the Hub; this module decides *what* goes up and *what* is trusted coming down.
* **A manifest makes pulls verifiable.** ``zoo push`` writes ``modelzoo.sha256`` (``sha256sum`` format)
  listing every other pushed file; ``zoo pull`` re-hashes each downloaded file against it. Only data
  files are ever downloaded: the model folder's own (config, safetensors, recipe, metrics, card, plots)
  plus the plain-data files its ``config.json`` records (a vocabulary; see :mod:`modelzoo.model.folder`),
  so nothing executable comes down.
* **Shas, not names, are the identity.** Every pull resolves its revision (branch, tag or sha) to a
  40-hex commit once; a cached commit needs no network at all, so ``HF_HUB_OFFLINE=1`` just works.
* **Idempotent pushes.** Before committing, the local files (and the generated card and manifest,
  which are pure functions of the run) are compared with the branch head's blob ids / LFS sha256s;
  an unchanged run makes no commit, and ``parent_commit`` guards against a branch that moved meanwhile.
* **One line per failure.** Client exceptions become :class:`ZooError` messages that say what to do;
  the token never appears in them.

``zoo.lock`` records, per Hub repo, the requested revision, the commit sha and every file's sha256.
"Used" means: the repos named to ``zoo lock`` plus those already in the lock. ``pull`` (and so
``modelzoo.load("hf-hub:org/name")``) without an explicit revision uses the locked sha when the
project's lock (``./zoo.lock`` or ``$ZOO_LOCK``) lists the repo, so a project's code can name models
by repo and still be reproducible.
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "push": ".upload",
    "PushResult": ".upload",
    "pull": ".download",
    "PullResult": ".download",
    "lock": ".download",
    "pull_locked": ".download",
    "lock_path": ".lockfile",
    "LockEntry": ".lockfile",
    "list_hub_models": ".listing",
    "build_card": ".card",
    "parse_ref": ".client",
    "MANIFEST": ".manifest",
    "hub_spec": ".backbones",
    "resolve_checkpoint": ".backbones",
    "HubCheckpoint": ".backbones",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
