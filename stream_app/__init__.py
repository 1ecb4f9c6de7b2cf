"""The paylimit stream worker (faust): validation, local-day counting, alerts, usage views."""
