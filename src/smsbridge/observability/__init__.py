"""What operators see of a running smsbridge: Prometheus metrics (``metrics``, ``gauges``,
``exposition``), readiness (``readiness``) and structured logs (``logs``).

A layer of its own, between ``services``/``delivery`` (which report into it) and ``storage``
(which the database-derived gauges and the readiness check read). docs/operations.md says
what each metric means and what to alert on.
"""
