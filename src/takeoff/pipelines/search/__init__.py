"""The search pipeline: a text column of a table → an index answering queries by meaning.

prepare and embed (``build.py``: :func:`build_index`) → model (:class:`SearchIndex`,
``index.py``).

Example:
    >>> import takeoff
    >>> from takeoff.pipelines.search import build_index
    >>> index = build_index("faq.csv", text="question", answer="answer", out="runs/faq")
    >>> index.search("I forgot my login secret", k=3)[0]["answer"]
    >>> takeoff.load("runs/faq").search_batch(["where is my parcel?", "refund please"], k=1)
"""

from takeoff.pipelines.search.build import build_index
from takeoff.pipelines.search.index import SearchIndex, top_k

__all__ = ["SearchIndex", "build_index", "top_k"]
