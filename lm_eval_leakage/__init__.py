"""Option-order leakage detection (Ni et al., arXiv 2409.01790) as lm-evaluation-harness tasks.

Kept import-free on purpose: the start-up hook (``autoload``) imports this package in every
interpreter, so nothing heavy may be imported here.
"""

from __future__ import annotations

__version__ = "0.1.0"
