# datamultiproc's README code run against persistable: only the imports are changed,
# the "..." placeholders are filled in (samples, folders), the README's `sample.date`
# typo reads `sample.data`, and its two `CustomProcessor` definitions get two names.
# The multiprocessing loop is the README's own (a Queue and Processes), except that its
# `queue.get()` after `queue.empty()` races (two workers can both see the last sample
# and one then blocks forever): here the worker stops when the queue is empty.
import numpy as np
from persistable.samples import BaseSample, Processor, Compose, Cache, Save, ProcessingError
from typing import Callable, Optional
from multiprocessing import Process, Queue
from queue import Empty


class CustomSample(BaseSample):
    data: int
    optional_data: Optional[str] = None
    array: np.ndarray


# Processor without arguments
class CustomProcessor(Processor):
    def process(self, sample: CustomSample) -> CustomSample:
        # do something with sample, e.g.
        sample.data = sample.data + 1
        return sample


# Processor with arguments
class CustomStepProcessor(Processor):
    step_size: int
    _hidden_arg: int = 1

    def process(self, sample: CustomSample) -> CustomSample:
        # do something with sample, e.g.
        sample.data = sample.data + self.step_size + self._hidden_arg
        return sample


process = Compose(
    CustomProcessor(),
    CustomStepProcessor(step_size=2),
    CustomStepProcessor(step_size=3),
)

samples = [CustomSample(id=str(i), data=i, array=np.arange(i)) for i in range(6)]

processed_samples = [process(s) for s in samples]
assert [s.data for s in processed_samples] == [i + 1 + 3 + 4 for i in range(6)]

process = Compose(
    Cache(
        processor=CustomProcessor(),
        cache_dir="path/to/cache"
    ),
    CustomStepProcessor(step_size=2),
    CustomStepProcessor(step_size=3),
    Save(save_to_dir="path/to/save"),
)
processed_samples = [process(s) for s in samples]
assert [s.data for s in processed_samples] == [i + 1 + 3 + 4 for i in range(6)]

# number of processor cores of your machine
NUM_PROCESSES = 2

SomeProcessor, AnotherProcessor = CustomProcessor, CustomProcessor

process = Compose([SomeProcessor(),
                   AnotherProcessor(),
                   Save(save_to_dir="path/to/save"),
                   ])


def do_processing(process: Callable, queue: Queue):
    while not queue.empty():
        try:
            sample = queue.get(timeout=1)
        except Empty:
            break
        try:
            sample = process(sample)
        except ProcessingError:
            print(f"failed processing: {sample.id}")


if __name__ == "__main__":
    # put the samples into a multiprocessing Queue
    samples_queue = Queue()
    for s in samples:
        samples_queue.put(s)

    processes = []
    for _ in range(NUM_PROCESSES):
        p = Process(target=do_processing, args=(process, samples_queue))
        p.start()
        processes.append(p)

    for p in processes:
        p.join()

    # What the README's loop cannot do: get the results back, in order.
    results = process.map(samples, executor="processes", max_workers=2)
    assert [s.id for s in results] == [s.id for s in samples]
    print(f"processed {len(results)} samples")
