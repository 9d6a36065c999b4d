"""The `bytereview` command, the platform's composition root.

It sits above every component: `bytereview jobs|ingest|extract|gateway|operator` starts one
of them, `bytereview up` (`launcher.up`) runs them all on one machine, and the REST client's
commands (`bytereview.client`) are mounted beside them. Nothing below imports it.
"""
