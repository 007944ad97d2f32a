"""The version of trio-failurelog, a leaf that every module may import."""

__version__ = "0.1.0"
