"""CRD validation rules (``x-kubernetes-validations``, CEL), evaluated as a real API server does.

:mod:`.validator` walks a schema and an object together and evaluates each rule (the entry
point, :func:`check`, is what ``Api._normalize`` calls); :mod:`.library` is the Kubernetes CEL
function library (strings, lists, sets, regex via RE2, URL, IP/CIDR, quantity) with
:mod:`.formats`; :mod:`.values` is what a rule sees of a value; :mod:`.cost` the budget estimate;
:mod:`.source` and :mod:`.fields` read a rule's text to hand CEL only the fields it can see.
"""

from devcluster.validation_rules.validator import (
    DEADLINE_SECONDS,
    MAX_EVALUATIONS,
    PER_CALL_LIMIT,
    RUNTIME_BUDGET,
    check,
    compile_error,
    has_rules,
    rule_errors,
)

__all__ = [
    "DEADLINE_SECONDS",
    "MAX_EVALUATIONS",
    "PER_CALL_LIMIT",
    "RUNTIME_BUDGET",
    "check",
    "compile_error",
    "has_rules",
    "rule_errors",
]
