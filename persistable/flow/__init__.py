"""h5flow-compatible chunked HDF5 flows: YAML configs, stages, references, MPI, resume.

``run_flow`` runs configs over an input file (serially, or under ``mpiexec`` with the
chunks shared between ranks), resumes an interrupted run from its journal and commits
the output file as an artifact. Stages, generators and resources written for h5flow
run after changing their imports to ``from persistable.flow import ...``.
Needs the ``hdf5`` extra (h5py, PyYAML); MPI needs the ``mpi`` extra (mpi4py, mpich).
"""

from __future__ import annotations

from persistable.flow._classes import H5FlowGenerator, H5FlowResource, H5FlowStage, resources
from persistable.flow._config import FlowConfig, Requirement, load_config
from persistable.flow._data_manager import H5FlowDataManager
from persistable.flow._errors import (
    FlowClassNotFoundError,
    FlowConfigError,
    FlowError,
    FlowInputError,
    FlowRequirementError,
    FlowStageError,
)
from persistable.flow._modules import H5FlowDatasetLoopGenerator
from persistable.flow._refs import dereference, dereference_chain, ref_region_dtype
from persistable.flow._run import FlowResult, run_flow

__all__ = [
    "FlowClassNotFoundError",
    "FlowConfig",
    "FlowConfigError",
    "FlowError",
    "FlowInputError",
    "FlowRequirementError",
    "FlowResult",
    "FlowStageError",
    "H5FlowDataManager",
    "H5FlowDatasetLoopGenerator",
    "H5FlowGenerator",
    "H5FlowResource",
    "H5FlowStage",
    "Requirement",
    "dereference",
    "dereference_chain",
    "load_config",
    "ref_region_dtype",
    "resources",
    "run_flow",
]
