"""The run store: every reconciliation run with its settings, inputs, classified rows and alerts.

* :mod:`recon_core.runs.records` — begin / complete / fail a run, list, show, reload its result;
* :mod:`recon_core.runs.frames` — exact serialization of the result tables (byte-identical reports);
* :mod:`recon_core.runs.access` — short writes, read-only readers, retry while the file is locked;
* :mod:`recon_core.runs.compare` — which calls changed bucket between two results;
* :mod:`recon_core.runs.verify` — re-run a recorded run from its files (the auditor's check);
* :mod:`recon_core.runs.boundary` — ``PERIOD_BOUNDARY`` at billing-period edges;
* :mod:`recon_core.runs.history` — what the History page lists, reopens and compares.
"""
