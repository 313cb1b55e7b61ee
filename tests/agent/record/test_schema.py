"""The record schema reads what older runs wrote."""

from __future__ import annotations

import json

from edas_agent.record import GateRound


def _round(**fields) -> dict:
    stats = {"k": 2, "E": 0.1, "sigma2": 0.05, "rho": 0.9, "D": 0.005, "E_M": 0.0951}
    rules = {"paper": True, "exact": True}
    return {"kind": "decision", "stats": stats, "delta_E": -0.001, "rules": rules,
            "rule": "exact", "accepted": False, "reason": "r", **fields}  # fmt: skip


def test_a_round_logged_with_min_effect_reads_as_its_floor():
    """Before the absolute floor had its own name, rounds logged it as min_effect."""
    old = GateRound.model_validate_json(json.dumps(_round(min_effect=0.00026)))
    assert old.floor == 0.00026
    new = GateRound.model_validate_json(old.model_dump_json())
    assert new.floor == 0.00026 and "min_effect" not in json.loads(old.model_dump_json())
    assert GateRound.model_validate(_round()).floor is None
