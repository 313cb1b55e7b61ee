"""Training learners: the door to the evaluators, the executors that run them (here, in
worker processes beside it, or on Ray), the store of every learner a run trained, and what
it cost."""

from edas_agent.training.executors import TrainRequest, make_executor
from edas_agent.training.learners import LearnerStore, Pool
from edas_agent.training.processes import usable_cores

__all__ = ["LearnerStore", "Pool", "TrainRequest", "make_executor", "usable_cores"]
