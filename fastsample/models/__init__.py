"""Models built on the engines: offset logistic regression, meta-estimator, samplers, ensembles, online learning."""
