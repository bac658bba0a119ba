"""adainfer_lib: layer-wise (logit-lens) passes, exit policies and a real early-exit engine.

A re-implementation of "Not all Layers of LLMs are Necessary during Inference" (AdaInfer,
Fan et al.). Modules, one concern each:

- ``paths``: repository, data, cache, results and figures folders.
- ``models``: ``load_model(spec)`` for Hugging Face ids, local folders, GGUF files and aliases.
- ``arch``: the ONE module that knows architectures (layers, attention, MLP, final norm, head).
- ``lens``: the hooked layer-wise forward pass (paper §3-4, Appendix B).
- ``tasks`` / ``builtin_tasks`` / ``prompts``: task registry, offline tasks, k-shot prompts.
- ``features``: the cached, tidy (example, layer) features table.
- ``policies``: exit policies with the scikit-learn estimator contract (paper §4.2-4.3).
- ``flops``: the paper's FLOPs ratio (Eq. 2) and an honest count from the model config.
- ``engine``: a real early-exit engine that stops computing exited examples.
"""

__version__ = "0.1.0"
