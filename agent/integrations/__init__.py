"""Other libraries as partners: Optuna (a space as its distributions, a run as its study).
Each needs its library installed (pip install 'edas-agent[optuna]'); importing this
package does not import them."""

from edas_agent.integrations.optuna import params_of, places, suggest

__all__ = ["params_of", "places", "suggest"]
