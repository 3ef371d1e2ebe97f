"""The model zoo: the architectures the articles discuss, as the project's own Keras code.

Each family module registers its models with their defaults, paper facts and training recipe.
The arithmetic lives in submodules imported where needed, not here: `edgeconv.zoo.analyze`
(params, MACs and memory per layer; it builds models, so it needs Keras at call time) and
`edgeconv.zoo.compare` (the articles' pairs in `edgeconv.zoo.pairs`, tabulated).
"""

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
from edgeconv.zoo.options import FAMILY_OPTIONS, FamilyOption
from edgeconv.zoo.recipe import Recipe, generic_recipe

__all__ = ["FAMILY_OPTIONS", "FamilyOption", "ModelOptions", "ModelSpec", "PaperFact", "Recipe",
           "analysis_options", "build", "generic_recipe", "get_spec", "list_models",
           "resolve_options"]
