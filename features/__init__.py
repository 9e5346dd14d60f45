"""Point-in-time purchase-habit profiles: one row per customer, features declared in ``features.catalogue``."""

from features.catalogue import FEATURES, catalogue, feature_names
from features.manifest import FeatureMismatchError, check_manifest, make_manifest
from features.profiles import build_profiles, build_training_snapshots
from features.tags import habit_tags

__all__ = [
    "FEATURES",
    "FeatureMismatchError",
    "build_profiles",
    "build_training_snapshots",
    "catalogue",
    "check_manifest",
    "feature_names",
    "habit_tags",
    "make_manifest",
]
