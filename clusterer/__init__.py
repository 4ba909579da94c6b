"""clusterer: expose templated extraction campaigns in a day of LLM prompt logs."""

__version__ = "0.1.0"
