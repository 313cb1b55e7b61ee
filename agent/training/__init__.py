"""Training learners: the door to the evaluators, the executors that run them (here or on
Ray), the store of every learner a run trained, and what it cost."""

from edas_agent.training.learners import LearnerStore, Pool

__all__ = ["LearnerStore", "Pool"]
