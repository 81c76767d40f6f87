"""What the analyst app computes, without streamlit: invoice mapping and the Reconcile page's views.

``invoice_mapping``: carrier detection from a header, the first guess of a mapping, the mapping
form and its validation, file previews. ``results_view``: KPI tiles, the results table, the
tolerance sensitivity curve and the explanation of one result row. The pages in ``pages/`` call
these and only render.
"""
