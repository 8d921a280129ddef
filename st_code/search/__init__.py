"""Code search over a repository with any embedding model: ``st-code index / search / update``.

``index`` builds (and updates) the index folder; ``searcher`` answers queries against it.
"""

from st_code.search.index import IndexReport, build_index, read_manifest, update_index
from st_code.search.searcher import CodeSearcher, Hit, search_index

__all__ = ["build_index", "update_index", "read_manifest", "IndexReport", "CodeSearcher", "Hit", "search_index"]
