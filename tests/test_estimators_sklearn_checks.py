"""scikit-learn's estimator checks on fastsample's estimators."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastsample.models.classifier import NegativeSamplingClassifier
from fastsample.models.offset_logistic import OffsetLogisticRegression

# The default NegativeSamplingClassifier (rate=0.1) fails these checks for one reason: their
# data sets hold ~10 negatives, 10% of which is usually none, and fit rightly refuses a sample
# with one class (InputError "the sample of N rows holds only one class"). Measured by running
# the checks on NegativeSamplingClassifier(); at rate=0.5 (below) every check passes.
_ONE_CLASS_SAMPLE = "default rate=0.1 keeps no negative of the check's ~10: one-class sample"
_DEFAULT_CLASSIFIER_FAILURES = dict.fromkeys(
    (
        "check_dont_overwrite_parameters",
        "check_n_features_in_after_fitting",
        "check_f_contiguous_array_estimator",
        "check_classifier_data_not_an_array",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_dict_unchanged",
        "check_fit2d_predict1d",
    ),
    _ONE_CLASS_SAMPLE,
)


def _expected_failed_checks(estimator):
    if isinstance(estimator, NegativeSamplingClassifier) and estimator.rate == 0.1:
        return _DEFAULT_CLASSIFIER_FAILURES
    return {}


@parametrize_with_checks(
    [
        OffsetLogisticRegression(),
        NegativeSamplingClassifier(),
        NegativeSamplingClassifier(rate=0.5),
        NegativeSamplingClassifier(strategy="uniform", correction="weights", rate=0.5),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
