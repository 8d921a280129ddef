"""Upload a saved model folder to the Hugging Face Hub, as it is on disk.

The folder is what ``model.save`` wrote (portable modules, ``modeling_st_code.py`` where needed, the
model card and its plots), so it is uploaded file for file rather than re-saved: what was evaluated
is what gets published.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from st_code.errors import MissingPathError, ServiceUnreachable, UsageError


def push_folder(folder: str | Path, repo_id: str, private: bool = True, token: str | None = None,
                commit_message: str = "Upload st-code model", log: Callable[[str], None] = print) -> str:
    """Create ``repo_id`` (a model repository; private unless ``private=False``) if it does not exist and
    upload ``folder`` into it; returns the repository's URL. Needs hub access and a write token
    (``huggingface-cli login`` or ``HF_TOKEN``)."""
    import httpx
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "modules.json").is_file():
        raise MissingPathError(f"{folder} is not a saved model folder (no modules.json); pass the folder model.save() wrote")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UsageError(f"{repo_id!r} is not a hub repository id; use 'owner/name'")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message=commit_message)
    except (OSError, httpx.HTTPError) as exc:  # offline mode, no route, HTTP errors (bad token, no rights)
        raise ServiceUnreachable(f"could not upload {folder} to the hub repository {repo_id} ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}); check hub access and your token "
                                 "(huggingface-cli login or HF_TOKEN), then push again with "
                                 f"python -m st_code push {folder} {repo_id}") from None
    log(f"pushed {folder} to {url}")
    return str(url)


__all__ = ["push_folder"]
