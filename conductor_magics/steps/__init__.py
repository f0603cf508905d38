"""The live-database steps of the implement loop, one module per command group.

Each step joins the two lower layers, ``workspace/`` (which component, which files) and
``engine/`` (which database), through a :class:`~.context.ComponentDatabase` and returns
a :class:`~.context.StepResult`. Imports point down only: ``context`` ← ``backup`` ←
``migrate`` ← ``tuning`` ← ``checks``; ``schema`` and ``sql`` sit on ``context`` alone.
"""
