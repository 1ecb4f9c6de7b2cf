"""The paylimit notifier: delivers each alert exactly once (Redis reserve/deliver/confirm)."""
