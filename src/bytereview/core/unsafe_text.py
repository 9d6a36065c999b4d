"""Characters no file name needs, and that make one name display as another.

C0 and C1 controls and DEL, and the bidirectional overrides, embeddings and isolates
(U+202A-U+202E, U+2066-U+2069): "invoice\u202egnp.exe" displays as "invoiceexe.png" (the
"Trojan Source" trick). One pattern for every name that reaches a user's screen: entries of
uploaded archives (services/ingest/entry_names.py) and the paths users declare on upload
(services/jobs/domain/paths.py).
"""

from __future__ import annotations

import re

UNSAFE_IN_NAMES = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
