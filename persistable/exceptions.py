"""The error tree of persistable.

Every error raised on purpose by this package derives from one root, and the
leaves also derive from the builtin they resemble so that existing ``except``
clauses keep working::

    PersistableError
    ├── ExplainedNotImplementedError           (NotImplementedError)
    ├── PayloadError
    │   ├── NoPayloadError
    │   ├── InvalidPayloadError                (ValueError)
    │   ├── PayloadSerializationError          (TypeError)
    │   └── PayloadLoadError
    │       ├── MissingPayloadClassError       (ImportError)
    │       └── UnknownFileIOError             (LookupError)
    ├── UnhashableParamError                   (TypeError)
    ├── InvalidParamsError                     (TypeError)
    ├── PersistableDefinitionError             (TypeError)
    ├── InvalidPayloadNameError                (ValueError)
    ├── DependencyError                        (ValueError)
    ├── ArtifactNotFoundError                  (FileNotFoundError)
    ├── InputFileError                         (FileNotFoundError)
    ├── AmbiguousArtifactError                 (LookupError)
    ├── CorruptArtifactError                   (OSError)
    ├── UnsupportedSchemeError                 (ValueError)
    ├── StoreError                             (OSError)
    │   ├── ReadOnlyStoreError                 (PermissionError)
    │   ├── StoreAccessDeniedError             (PermissionError)
    │   └── StoreConfigurationError
    ├── MissingDependencyError                 (ImportError)
    ├── LockTimeoutError                       (TimeoutError)
    ├── RunError                               (RuntimeError)
    ├── KeyMismatchError                       (RuntimeError)
    ├── UntrustedPayloadError                  (PermissionError)
    ├── InvalidSampleError                     (ValueError)
    ├── ProcessingError                        (RuntimeError)
    ├── ManifestError                          (ValueError)
    ├── PublishError                           (RuntimeError)
    ├── PackageNotFoundError                   (FileNotFoundError)
    └── MapError                               (RuntimeError)

    RunInterrupted                             (KeyboardInterrupt)

    PersistableWarning                         (UserWarning)
    ├── InvalidPayloadWarning
    ├── QuarantineWarning
    ├── CodeChangedWarning
    ├── UnreadableCodeWarning
    └── ForeignArtifactWarning
"""

from __future__ import annotations

__all__ = [
    "AmbiguousArtifactError",
    "ArtifactNotFoundError",
    "CodeChangedWarning",
    "CorruptArtifactError",
    "DependencyError",
    "ExplainedNotImplementedError",
    "ForeignArtifactWarning",
    "InputFileError",
    "InvalidParamsError",
    "InvalidPayloadError",
    "InvalidPayloadNameError",
    "InvalidPayloadWarning",
    "InvalidSampleError",
    "KeyMismatchError",
    "LockTimeoutError",
    "ManifestError",
    "MapError",
    "MissingDependencyError",
    "MissingPayloadClassError",
    "NoPayloadError",
    "PackageNotFoundError",
    "PayloadError",
    "PayloadLoadError",
    "PayloadSerializationError",
    "PersistableDefinitionError",
    "PersistableError",
    "PersistableWarning",
    "ProcessingError",
    "PublishError",
    "QuarantineWarning",
    "ReadOnlyStoreError",
    "RunError",
    "RunInterrupted",
    "StoreAccessDeniedError",
    "StoreConfigurationError",
    "StoreError",
    "UnhashableParamError",
    "UnknownFileIOError",
    "UnreadableCodeWarning",
    "UnsupportedSchemeError",
    "UntrustedPayloadError",
]


class PersistableError(Exception):
    """Root of every error raised on purpose by persistable."""


class ExplainedNotImplementedError(PersistableError, NotImplementedError):
    """A hook that a subclass must implement was not implemented."""

    def __init__(self, method_name: str) -> None:
        super().__init__(
            f"{method_name}() is not implemented; override it in your Persistable subclass."
        )


class PayloadError(PersistableError):
    """A problem with a payload (missing, invalid or not serializable)."""


class NoPayloadError(PayloadError):
    """An operation needs a payload but none was generated or loaded."""


class InvalidPayloadError(PayloadError, ValueError):
    """``_validate_payload`` rejected a payload."""


class PayloadSerializationError(PayloadError, TypeError):
    """The chosen FileIO cannot write (or read) this payload."""


class PayloadLoadError(PayloadError):
    """An intact artifact (its checksums match) cannot be loaded here; it is left in place."""


class MissingPayloadClassError(PayloadLoadError, ImportError):
    """A pickled payload names a class or module that cannot be imported in this process."""


class UnknownFileIOError(PayloadLoadError, LookupError):
    """The FileIO named in ``metadata.json`` is not registered (or importable) here."""


class UnhashableParamError(PersistableError, TypeError):
    """A params field holds a value without a stable canonical encoding."""


class InvalidParamsError(PersistableError, TypeError):
    """``params`` is not a ``PersistableParams`` dataclass instance."""


class PersistableDefinitionError(PersistableError, TypeError):
    """A Persistable subclass is declared with an unsupported class attribute value."""


class InvalidPayloadNameError(PersistableError, ValueError):
    """A payload name could escape the store or collide with another one."""


class DependencyError(PersistableError, ValueError):
    """Tracked dependencies are inconsistent (duplicate names, cycles, wrong types)."""


class ArtifactNotFoundError(PersistableError, FileNotFoundError):
    """No committed artifact exists for a key in a store."""


class InputFileError(PersistableError, FileNotFoundError):
    """A ``File`` or ``Directory`` param names something missing, unreadable or of the wrong kind."""


class AmbiguousArtifactError(PersistableError, LookupError):
    """An artifact reference (``payload_name/key-prefix``) matches several artifacts."""


class CorruptArtifactError(PersistableError, OSError):
    """A committed artifact does not match its ``metadata.json`` or cannot be read."""


class UnsupportedSchemeError(PersistableError, ValueError):
    """An artifact was written by a newer, unknown key or metadata scheme."""


class StoreError(PersistableError, OSError):
    """A store could not be used (configuration, permissions, network)."""


class ReadOnlyStoreError(StoreError, PermissionError):
    """A write was attempted on a store opened read-only or not writable."""


class StoreAccessDeniedError(StoreError, PermissionError):
    """The store's server refused to let these credentials read a location."""


class StoreConfigurationError(StoreError):
    """A ``data_dir`` or URL cannot be turned into a working store."""


class MissingDependencyError(PersistableError, ImportError):
    """An optional dependency needed for this feature is not installed."""


class LockTimeoutError(PersistableError, TimeoutError):
    """Waiting for another worker that generates the same key took too long."""


class RunError(PersistableError, RuntimeError):
    """``persistable.run(..., raise_on_failure=True)`` had failed nodes; ``.report`` holds the details."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class KeyMismatchError(PersistableError, RuntimeError):
    """A node's key differs from the key it had a moment before.

    A worker computed another key for a node than the process that resolved the run, or
    the node's inputs (params, input files) changed while its payload was generated.
    """


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``persistable.run``; ``.report`` holds what finished before it."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class UntrustedPayloadError(PersistableError, PermissionError):
    """A pickle payload from a store that is not trusted was refused."""


class InvalidSampleError(PersistableError, ValueError):
    """A sample has no usable ``id``, or two samples of one ``map`` share an id."""


class ManifestError(PersistableError, ValueError):
    """A dataset manifest lacks a declared column or points at a missing or unreadable file."""


class PublishError(PersistableError, RuntimeError):
    """A package cannot be published (no git repository, uncommitted or unpushed code, a bad name)."""


class PackageNotFoundError(PersistableError, FileNotFoundError):
    """No package of that name, or no such version of it, exists in the destination."""


class ProcessingError(PersistableError, RuntimeError):
    """A processor failed on one sample; names the sample, the processor and the original error.

    ``original`` is the exception the processor raised (None when it could not travel
    back from a worker process), ``traceback`` its formatted traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        sample_id: object = None,
        processor: str = "",
        original: BaseException | None = None,
        traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.sample_id = sample_id
        self.processor = processor
        self.original = original
        self.traceback = traceback

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields do not survive the default exception pickling (worker processes).
        return (
            _rebuild_processing_error,
            (str(self), self.sample_id, self.processor, self.original, self.traceback),
        )


def _rebuild_processing_error(
    message: str,
    sample_id: object,
    processor: str,
    original: BaseException | None,
    traceback: str,
) -> ProcessingError:
    return ProcessingError(
        message, sample_id=sample_id, processor=processor, original=original, traceback=traceback
    )


class MapError(PersistableError, RuntimeError):
    """Some samples of a ``map`` failed; the others completed.

    ``failures`` holds one :class:`ProcessingError` per failed sample, ``results`` the
    processed samples in input order with ``None`` where a sample failed.
    """

    def __init__(
        self, message: str, failures: list[ProcessingError], results: list[object]
    ) -> None:
        super().__init__(message)
        self.failures = failures
        self.results = results


class PersistableWarning(UserWarning):
    """Root of the warnings issued by persistable for recoverable surprises."""


class InvalidPayloadWarning(PersistableWarning):
    """A loaded payload failed validation and ``warn_if_validation_fails`` was set."""


class QuarantineWarning(PersistableWarning):
    """A corrupt artifact was moved aside into the store's quarantine area."""


class CodeChangedWarning(PersistableWarning):
    """A loaded artifact was generated by code whose fingerprint differs from the current code."""


class UnreadableCodeWarning(PersistableWarning):
    """Code a payload depends on has no readable source, so its changes cannot be detected."""


class ForeignArtifactWarning(PersistableWarning):
    """A loaded artifact was written by another class under the same payload name."""
