"""The paylimit benchmark: the pipeline measured side by side with a bare-consumer ceiling."""
