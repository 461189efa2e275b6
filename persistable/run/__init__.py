"""Run pipelines at scale: resolve targets into one DAG and generate what is missing.

``persistable.run(targets, executor=...)`` is the entry point; :class:`RunReport` is
what it returns, and :func:`grid` builds params for :meth:`Persistable.map`. The
package re-exports the function under its own name, so the attribute
``persistable.run`` is the function; import the helpers with
``from persistable.run import resolve, RunReport``.
"""

from persistable._map import grid
from persistable.run._graph import Graph, Node, resolve
from persistable.run._report import NodeResult, RunReport
from persistable.run._run import run

__all__ = ["Graph", "Node", "NodeResult", "RunReport", "grid", "resolve", "run"]
