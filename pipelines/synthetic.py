"""The built-in sample's generator at its old address: the code lives in ``pipelines.scenarios.coffee``."""

from pipelines.scenarios.coffee import PERSONAS, SyntheticData, generate, write
from pipelines.scenarios.coffee.parameters import *  # noqa: F403  (the planted parameters, importable as before)
from pipelines.scenarios.coffee.sampling import (  # noqa: F401  (helpers other scenarios may reuse)
    _as_datetime,
    _choice_rows,
    _conform,
    _ids,
    _sigmoid,
    _take_str,
)

__all__ = ["PERSONAS", "SyntheticData", "generate", "write"]
