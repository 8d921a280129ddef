"""NDCG@10 computed by hand (encode, rank by cosine, the textbook formula), to check st-code's
evaluator against rather than trusting a range."""

from __future__ import annotations

import numpy as np


def ndcg_at_10(model, rs, query_prompt: str | None = None, document_prompt: str | None = None,
               max_queries: int | None = None) -> float:
    query_ids = [q for q in rs.queries if q in rs.relevant][:max_queries]
    doc_ids = list(rs.corpus)
    queries = model.encode([rs.queries[q] for q in query_ids], prompt=query_prompt or "", normalize_embeddings=True)
    docs = model.encode([rs.corpus[d] for d in doc_ids], prompt=document_prompt or "", normalize_embeddings=True)
    scores = queries @ docs.T
    total = 0.0
    for row, query in enumerate(query_ids):
        ranked = np.argsort(-scores[row], kind="stable")[:10]
        dcg = sum(1 / np.log2(rank + 2) for rank, j in enumerate(ranked) if doc_ids[j] in rs.relevant[query])
        ideal = sum(1 / np.log2(rank + 2) for rank in range(min(10, len(rs.relevant[query]))))
        total += dcg / ideal
    return total / len(query_ids)
