"""scikit-learn's estimator checks on fastsample's estimators."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastsample.estimators import OffsetLogisticRegression

# Expected failures, each with the reason (none so far for OffsetLogisticRegression).
_EXPECTED: dict[str, dict[str, str]] = {
    "OffsetLogisticRegression": {},
}


def _expected_failed_checks(estimator):
    return _EXPECTED.get(type(estimator).__name__, {})


@parametrize_with_checks(
    [OffsetLogisticRegression()],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
