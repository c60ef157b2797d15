"""Training pairs, QLoRA, adapter export and evaluation."""

import assistant  # noqa: F401  (imports sqlite-utils the light way before anything here does)
