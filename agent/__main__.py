"""`python -m edas_agent`: the `edas-agent` command, where its script is not installed
(a package on PYTHONPATH, as on a borrowed GPU machine)."""

from edas_agent.cli.app import main

main()
