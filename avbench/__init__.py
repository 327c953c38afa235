"""avbench: a benchmark suite for audio-visual representation learning."""

__version__ = "0.1.0"
