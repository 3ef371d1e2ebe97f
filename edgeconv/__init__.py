"""edgeconv: compact CNNs from definition to a measured deployment.

Importing this package is cheap on purpose: no TensorFlow, no numpy.
"""

__version__ = "0.1.0"
