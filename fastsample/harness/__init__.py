"""Jobs on synthetic data: generator, demo, engine benchmark, paper reproduction."""
