"""Data checks: findings about a table that a person should know before training on it.

Used by ``takeoff inspect`` and before every train. Each finding names the column (when there
is one), what was found, and the fix. Severities:

- ``error``: training on this data would give a broken or misleading model (target leakage,
  a class too small to stratify). Strict mode stops on these.
- ``warning``: training works, but something is off (duplicates, imbalance, bad values).
- ``info``: what takeoff does on its own (drops identifier, constant and empty columns).

Checks (the ``check`` field), one module per group: the target (``missing_target``,
``rare_class``, ``imbalance``, ``rare_label``, ``no_label``), ``leakage``, the table and its
columns (``duplicates``, ``mostly_missing``, ``high_cardinality``, ``identifier``, ``constant``,
``empty``), numbers (``mixed_types``, ``infinite``), text columns (``text_not_string``,
``empty_text``, ``long_text``, ``duplicate_text``, ``language_mix``) and image columns
(``unreadable_image``, ``duplicate_image``, ``conflicting_duplicate_image``, ``tiny_image``,
``mixed_image_modes``).
"""

from takeoff.data.checks.finding import SEVERITIES, CheckParams, Finding
from takeoff.data.checks.run import run_checks

__all__ = ["SEVERITIES", "CheckParams", "Finding", "run_checks"]
