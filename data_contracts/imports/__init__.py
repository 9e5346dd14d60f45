"""Importers: a shop's own exports (Shopify orders, any POS CSV) converted to the canonical tables.

Pure functions (frames in, frames out); reading the files and the `rewards import` commands live in
``pipelines/importers.py``. Rows that cannot be converted are quarantined with a reason
(:mod:`data_contracts.quarantine`), never dropped; no personal data reaches the output.
"""
