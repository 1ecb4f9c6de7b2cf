"""The paylimit payment simulator: seeded scenarios, the independent oracle, the Kafka publisher."""
