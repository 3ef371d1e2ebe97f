"""The model zoo: the architectures the articles discuss, as the project's own Keras code."""

from edgeconv.zoo._registry import (
    ModelOptions,
    ModelSpec,
    PaperFact,
    analysis_options,
    build,
    get_spec,
    list_models,
    resolve_options,
)

__all__ = ["ModelOptions", "ModelSpec", "PaperFact", "analysis_options", "build", "get_spec",
           "list_models", "resolve_options"]
