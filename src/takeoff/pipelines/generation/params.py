"""What a generative run can be told: the config section ``generate``, declared in
:mod:`takeoff.config` beside the other task sections (the config module reads no pipeline)."""

from takeoff.config import GenerateParams

__all__ = ["GenerateParams"]
