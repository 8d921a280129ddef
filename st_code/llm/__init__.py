"""One way to ask LLMs, shared by data_gen and the curriculum's judge: the client (bounded
concurrency, timeouts, retries with backoff, load spread over endpoints, usage), the journal that
makes reruns ask nothing twice, and the paper's Table 17 judgement."""

from st_code.llm.answers import Rejected, clean
from st_code.llm.client import CLIENTS, LLMClient, LLMError, LLMStats, choose_client
from st_code.llm.journal import Journal, work_key

__all__ = ["LLMClient", "LLMError", "LLMStats", "CLIENTS", "choose_client", "Journal", "work_key", "Rejected",
           "clean"]
