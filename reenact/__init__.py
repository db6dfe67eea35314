"""reenact: real-time facial expression reenactment (Fan et al., IEEE Access 2023).

Importing the package is cheap and imports neither torch nor any GPU library.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
