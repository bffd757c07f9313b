"""Configuration of a cell: the ``becomingone.yaml`` schema, loading and checking.

Rule: nothing else in the package reads configuration files or ``BECOMINGONE__*`` variables.
"""

from becomingone.config.load import ENV_PREFIX, ConfigIssue, check_config, load_config, read_raw
from becomingone.config.schema import (
    ApiConfig,
    BecomingOneConfig,
    CellConfig,
    ChoirConfig,
    ClusterConfig,
    EmissaryConfig,
    GlyphCommandConfig,
    GlyphsConfig,
    KairosConfig,
    LoggingConfig,
    MasterConfig,
    MemoryConfig,
    RetentionConfig,
    SecurityConfig,
    SyncConfig,
    WitnessingConfig,
)

__all__ = [
    "ENV_PREFIX",
    "ApiConfig",
    "BecomingOneConfig",
    "CellConfig",
    "ChoirConfig",
    "ClusterConfig",
    "ConfigIssue",
    "EmissaryConfig",
    "GlyphCommandConfig",
    "GlyphsConfig",
    "KairosConfig",
    "LoggingConfig",
    "MasterConfig",
    "MemoryConfig",
    "RetentionConfig",
    "SecurityConfig",
    "SyncConfig",
    "WitnessingConfig",
    "check_config",
    "load_config",
    "read_raw",
]
