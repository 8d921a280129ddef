"""data_gen: CodeR-Pile-style synthetic training data through any LLM litellm can reach.

    from data_gen import Pipeline, PipelineConfig
    Pipeline(PipelineConfig(out="data/coder-pile", corpus=["~/src"], model="hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct",
                            api_bases=["http://gpu1:8000/v1"])).run("all")

Command line: ``python -m data_gen --help``.
"""

from data_gen.pipeline import STAGES, Pipeline, PipelineConfig, Summary

__all__ = ["Pipeline", "PipelineConfig", "Summary", "STAGES"]
