"""scikit-learn's estimator checks on fastsample's estimators."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastsample.estimators import NegativeSamplingClassifier, OffsetLogisticRegression

# Expected failures, each with the reason (none so far for OffsetLogisticRegression).
_EXPECTED: dict[str, dict[str, str]] = {
    "OffsetLogisticRegression": {},
}


def _expected_failed_checks(estimator):
    return _EXPECTED.get(type(estimator).__name__, {})


# NegativeSamplingClassifier runs at rate=0.5: the checks' data sets hold ~10 negatives, and at
# the default rate=0.1 the sample often keeps none, which fit rightly refuses (one class).
@parametrize_with_checks(
    [
        OffsetLogisticRegression(),
        NegativeSamplingClassifier(rate=0.5),
        NegativeSamplingClassifier(strategy="uniform", correction="weights", rate=0.5),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
