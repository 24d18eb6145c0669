"""Non-learned baselines scored by the same evaluation code as the networks."""
