"""The shipped scenario files (YAML), loaded by name with producer_sim.scenario.load_scenario."""
