"""Run pipelines at scale: resolve targets into one DAG and generate what is missing.

``persistable.run(targets, executor=...)`` is the entry point; :class:`RunReport` is
what it returns, and :func:`grid` builds params for :meth:`Persistable.map`.
"""

from persistable.run._graph import Graph, Node, resolve
from persistable.run._map import grid
from persistable.run._report import NodeResult, RunReport
from persistable.run._run import run

__all__ = ["Graph", "Node", "NodeResult", "RunReport", "grid", "resolve", "run"]
