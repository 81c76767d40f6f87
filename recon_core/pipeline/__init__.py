"""The unattended pipeline: ``python -m recon_core run --config recon.toml``.

* :mod:`recon_core.pipeline.config` — ``recon.toml``, validated on load;
* :mod:`recon_core.pipeline.storage` — inbox/outbox folders or object-storage URLs (fsspec);
* :mod:`recon_core.pipeline.period` — billing periods cut at the carrier's cycle edge;
* :mod:`recon_core.pipeline.runner` — each new invoice: ingest, fetch, reconcile, publish, record, alert.
"""
