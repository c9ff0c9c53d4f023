"""`churn report`: churn and retention figures, where and why customers are lost, and
with a model who is at risk now, in one self-contained HTML page and a JSON file.

monthly (per month, per cohort) -> segments, indicators (where and why) -> risk (with a
model) -> sections (HTML, numbers, tables, charts per section) -> build (the folder).
"""
